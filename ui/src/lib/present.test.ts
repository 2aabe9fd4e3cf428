import { describe, expect, it } from "vitest";

import type { ConnectorStatus, GrantStatus } from "../ipc";
import { ago, cardActions, connectorTone, connectorUrl, countdown, errorOf, overallTone, scopeChips, stateTone } from "./present";

const grant: GrantStatus = {
  state: "ok",
  kind: "user",
  account_id: "1",
  account_name: "Ada",
  account_email: "ada@example.com",
  granted_scopes: ["read:me", "read:jira-work", "manage:jira-configuration"],
  access_expires_at: "2026-11-23T12:10:00Z",
  obtained_at: "2026-11-23T10:10:00Z",
  refreshed_at: "2026-11-23T11:10:00Z",
  generation: 1,
  last_error: null,
};

function connector(overrides: Partial<ConnectorStatus> = {}): ConnectorStatus {
  return {
    name: "jira",
    type: "jira",
    display_name: "Jira",
    provider: "atlassian",
    auth: "user",
    state: "ok",
    site: "acme",
    scopes: {
      required: ["read:me", "read:jira-work", "write:jira-work"],
      requested: [
        { scope: "read:me", requested_by: ["jira", "confluence"], provider_default: false },
        { scope: "read:jira-work", requested_by: ["jira"], provider_default: false },
        { scope: "write:jira-work", requested_by: ["jira"], provider_default: true },
      ],
      granted: grant.granted_scopes,
      missing: ["write:jira-work"],
      extra: ["manage:jira-configuration"],
      fix: "sign in again and keep write:jira-work ticked: `latch login atlassian`",
    },
    grant,
    credential: null,
    findings: [],
    attention: null,
    base_url: null,
    ...overrides,
  };
}

describe("scope chips", () => {
  it("marks each required scope granted or missing and adds extras, with who asked", () => {
    const chips = scopeChips(connector());
    expect(chips.map((c) => [c.scope, c.kind])).toEqual([
      ["read:me", "granted"],
      ["read:jira-work", "granted"],
      ["write:jira-work", "missing"],
      ["manage:jira-configuration", "extra"],
    ]);
    expect(chips[0]?.askedBy).toEqual(["jira", "confluence"]);
    expect(chips[0]?.title).toContain("jira, confluence");
    expect(chips[2]?.askedBy).toEqual(["jira", "the provider"]);
    expect(chips[3]?.askedBy).toEqual([]);
  });

  it("shows scopes as requested before any sign-in", () => {
    const chips = scopeChips(connector({ grant: null, scopes: { ...connector().scopes, granted: null, missing: [], extra: [] } }));
    expect(chips.every((c) => c.kind === "requested")).toBe(true);
  });
});

describe("states", () => {
  it("ranks the worst tone for the tray", () => {
    expect(overallTone([])).toBe("idle");
    expect(overallTone([connector()])).toBe("ok");
    expect(overallTone([connector(), connector({ state: "site_unbound" })])).toBe("warning");
    expect(overallTone([connector({ state: "not_signed_in" }), connector({ state: "needs_login" })])).toBe("error");
    expect(stateTone("refresh_failing")).toBe("error");
  });
});

describe("times", () => {
  const now = Date.parse("2026-11-23T12:00:00Z");
  it("counts down to the access-token expiry and past it", () => {
    expect(countdown("2026-11-23T12:10:00Z", now)).toBe("expires in 10 min 00 s");
    expect(countdown("2026-11-23T11:59:30Z", now)).toBe("expired 30 s ago");
    expect(countdown("2026-11-23T14:30:00Z", now)).toBe("expires in 2 h 30 min");
    expect(countdown(null, now)).toBeNull();
    expect(countdown("not a time", now)).toBeNull();
  });
  it("says how long ago", () => {
    expect(ago("2026-11-23T11:58:00Z", now)).toBe("2 min 00 s ago");
    expect(ago("2026-11-23T11:59:58Z", now)).toBe("just now");
  });
});

describe("card actions", () => {
  it("offers sign-in first when nobody signed in, and never sign-out", () => {
    const actions = cardActions(connector({ state: "not_signed_in", grant: null }), undefined);
    expect(actions[0]).toBe("sign_in");
    expect(actions).not.toContain("sign_out");
    expect(actions).toContain("copy_url");
  });
  it("offers re-consent first when scopes are missing", () => {
    expect(cardActions(connector({ state: "needs_step_up" }), undefined)[0]).toBe("reconsent");
  });
  it("offers refresh and sign-out when ready", () => {
    const actions = cardActions(connector(), undefined);
    expect(actions).toEqual(["refresh", "reconsent", "sign_out", "copy_url"]);
  });
  it("offers a credential for key-based connectors", () => {
    expect(cardActions(connector({ auth: "api-key", grant: null, state: "not_signed_in" }), undefined)).toEqual([
      "set_credential",
      "copy_url",
    ]);
  });
  it("offers a site choice when unbound", () => {
    expect(cardActions(connector({ state: "site_unbound", site: null }), undefined)).toContain("choose_site");
  });
});

describe("small things", () => {
  it("builds the connector's proxy URL", () => {
    expect(connectorUrl("http://127.0.0.1:7391", "jira")).toBe("http://127.0.0.1:7391/jira");
    expect(connectorUrl(null, "jira")).toBeNull();
  });
  it("reads error codes, never guessing from text", () => {
    expect(errorOf({ code: "needs_login", message: "sign in" })).toEqual({ code: "needs_login", message: "sign in" });
    expect(errorOf("boom").code).toBe("unknown");
  });
});

describe("attention", () => {
  it("a credential ending soon is amber while its state stays ok", () => {
    const ending = connector({
      attention: { code: "expiring", at: "2026-12-10T00:00:00Z", days_left: 3, message: "its credential expires in 3 day(s)" },
    });
    expect(ending.state).toBe("ok");
    expect(connectorTone(ending)).toBe("warning");
    expect(connectorTone(connector())).toBe("ok");
    expect(overallTone([connector(), ending])).toBe("warning");
    expect(stateTone("keychain_locked")).toBe("error");
  });
});
