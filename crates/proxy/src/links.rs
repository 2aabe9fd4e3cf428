//! Answers whose links would take a client off the proxy, rewritten as they stream
//! (`latch_core::upstream::links`): JSON bodies (gzip or deflate decoded first, and passed on
//! uncompressed — the hop to the client is loopback), `Location` and `Link`. Everything else
//! passes byte for byte: other content types, attachments, entity properties.

use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use hyper::body::{Body, Frame, SizeHint};
use latch_core::upstream::links::{JsonLinks, LinkTarget};

use crate::BoxError;

/// The encodings the proxy can read; the upstream is asked for no other (when the client asked
/// for brotli, say, the upstream answers gzip instead).
const READABLE: [&str; 3] = ["gzip", "deflate", "identity"];

/// The client's `Accept-Encoding` without what the proxy cannot read.
pub(crate) fn readable_encodings(headers: &mut HeaderMap) {
    let Some(value) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|part| {
            let name = part.split(';').next().unwrap_or_default().trim();
            READABLE.iter().any(|r| r.eq_ignore_ascii_case(name))
        })
        .collect();
    if kept.is_empty() {
        headers.remove(header::ACCEPT_ENCODING);
    } else if let Ok(value) = HeaderValue::from_str(&kept.join(", ")) {
        headers.insert(header::ACCEPT_ENCODING, value);
    }
}

/// `Location` and `Link` on the proxy.
pub(crate) fn rewrite_headers(headers: &mut HeaderMap, target: &LinkTarget) {
    let moved = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| target.location(v));
    if let Some(value) = moved.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::LOCATION, value);
    }
    let links: Vec<HeaderValue> = headers
        .get_all(header::LINK)
        .iter()
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|text| target.link_header(text))
                .and_then(|new| HeaderValue::from_str(&new).ok())
                .unwrap_or_else(|| v.clone())
        })
        .collect();
    if !links.is_empty() {
        headers.remove(header::LINK);
        for value in links {
            headers.append(header::LINK, value);
        }
    }
}

/// How a rewritten body is read.
pub(crate) enum Decoder {
    Identity,
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Deflate(flate2::write::ZlibDecoder<Vec<u8>>),
}

/// Whether a body's links are rewritten, and how to read it: `None` leaves it as it is.
/// `request_path` is the path below the connector.
pub(crate) fn body_rewrite(headers: &HeaderMap, request_path: &str) -> Option<Decoder> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
    let attachment = headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("attachment")
        });
    // Entity properties hold the caller's own JSON: never rewritten.
    let properties = request_path
        .split('/')
        .any(|segment| segment == "properties");
    if !json || attachment || properties {
        return None;
    }
    match headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("identity") => Some(Decoder::Identity),
        Some("gzip" | "x-gzip") => Some(Decoder::Gzip(flate2::write::GzDecoder::new(Vec::new()))),
        Some("deflate") => Some(Decoder::Deflate(
            flate2::write::ZlibDecoder::new(Vec::new()),
        )),
        // An encoding the proxy cannot read: passed on as it is.
        Some(_) => None,
    }
}

/// The headers of an answer whose body is rewritten: its length changes, any digest of it no
/// longer holds, and it goes out uncompressed.
pub(crate) fn rewritten_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::HeaderName::from_static("content-md5"),
        header::HeaderName::from_static("digest"),
    ] {
        headers.remove(name);
    }
}

/// A body with its links rewritten as it streams.
pub(crate) struct Rewritten<B> {
    inner: B,
    decoder: Decoder,
    links: JsonLinks,
    done: bool,
}

impl<B> Rewritten<B> {
    pub(crate) fn new(inner: B, decoder: Decoder, target: LinkTarget) -> Self {
        Self {
            inner,
            decoder,
            links: JsonLinks::new(target),
            done: false,
        }
    }

    fn decode(&mut self, data: &[u8]) -> Result<Vec<u8>, std::io::Error> {
        Ok(match &mut self.decoder {
            Decoder::Identity => data.to_vec(),
            Decoder::Gzip(d) => {
                d.write_all(data)?;
                std::mem::take(d.get_mut())
            }
            Decoder::Deflate(d) => {
                d.write_all(data)?;
                std::mem::take(d.get_mut())
            }
        })
    }

    fn decode_end(&mut self) -> Result<Vec<u8>, std::io::Error> {
        Ok(match &mut self.decoder {
            Decoder::Identity => Vec::new(),
            Decoder::Gzip(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
            Decoder::Deflate(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
        })
    }
}

impl<B> Body for Rewritten<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        // Trailers: nothing to rewrite, nothing to pass (a rewritten body
                        // goes out plainly).
                        continue;
                    };
                    let plain = this.decode(&data).map_err(|e| Box::new(e) as BoxError)?;
                    let mut out = Vec::with_capacity(plain.len() + 64);
                    this.links.feed(&plain, &mut out);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let plain = this.decode_end().map_err(|e| Box::new(e) as BoxError)?;
                    let mut out = Vec::new();
                    this.links.feed(&plain, &mut out);
                    this.links.finish(&mut out);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
