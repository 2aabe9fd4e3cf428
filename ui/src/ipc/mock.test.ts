// The mock host is what the browser tests drive; these pin the rules it shares with the core.
import { describe, expect, it } from "vitest";

import { createMockHost } from "./mock";

describe("mock host", () => {
  it("merges scopes with attribution and asks for step-up after a new connector", async () => {
    const host = createMockHost();
    await host.addProvider({ name: "atlassian", preset: "atlassian", client_id: "id", client_secret: "s", redirect_uri: null });
    await host.addConnector({ name: "jira", type: null, provider: null, auth: null, site: null, email: null, client_id: null });
    await host.signIn("atlassian", null);
    const preview = await host.previewConnector({ name: "confluence", type: null, provider: null, auth: null, site: null, email: null, client_id: null });
    expect(preview.diff.shared).toEqual(["read:me", "offline_access"]);
    expect(preview.diff.added).toContain("read:confluence-content.all");
    expect(preview.needs_step_up).toBe(true);
    await host.addConnector({ name: "confluence", type: null, provider: null, auth: null, site: null, email: null, client_id: null });
    const status = await host.status();
    expect(status.connectors.map((c) => c.state)).toEqual(["ok", "needs_step_up"]);
    const readMe = status.providers[0]?.requested_scopes.find((r) => r.scope === "read:me");
    expect(readMe?.requested_by).toEqual(["jira", "confluence"]);
  });

  it("refuses with codes, like the core", async () => {
    const host = createMockHost();
    await expect(
      host.addConnector({ name: "jira", type: null, provider: null, auth: null, site: null, email: null, client_id: null }),
    ).rejects.toMatchObject({ code: "invalid_request" });
    await expect(host.signIn("nope", null)).rejects.toMatchObject({ code: "unknown_provider" });
  });
});
