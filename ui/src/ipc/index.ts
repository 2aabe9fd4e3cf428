// The only module that imports @tauri-apps/*: everything else talks to this typed surface, so
// the UI can run against a mock host in tests.
import { invoke } from "@tauri-apps/api/core";

import type { StatusReport } from "./types";

export type * from "./types";

export interface Host {
  status(): Promise<StatusReport>;
}

export const tauriHost: Host = {
  status: () => invoke<StatusReport>("status"),
};
