#!/usr/bin/env python3
"""A TCP relay that holds every chunk DELAY_MS (default 10) before passing it on, each way:
a far-away upstream on loopback without `tc netem` (which needs privileges). A new connection
also waits one round trip before anything passes, as a TCP handshake to a far host would.

Usage: delay_relay.py TARGET_PORT  -> prints the port it listens on, then relays until killed.
"""
import asyncio
import os
import sys

DELAY = float(os.environ.get("DELAY_MS", "10")) / 1000


async def pump(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def later():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    sender = asyncio.ensure_future(later())
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + DELAY, data or None))
            if not data:
                break
    except OSError:
        queue.put_nowait((loop.time() + DELAY, None))
    try:
        await sender
    except OSError:
        pass


async def main():
    target = int(sys.argv[1])

    async def handle(client_reader, client_writer):
        await asyncio.sleep(2 * DELAY)  # the handshake's round trip
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_writer.close()
            return
        for s in (client_writer, up_writer):
            sock = s.get_extra_info("socket")
            if sock is not None:
                import socket
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pump(client_reader, up_writer), pump(up_reader, client_writer),
                             return_exceptions=True)
        for s in (client_writer, up_writer):
            s.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
