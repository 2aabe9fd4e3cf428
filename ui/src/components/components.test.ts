// Components mounted in jsdom over the typed mock host.
import { flushSync, mount, unmount } from "svelte";
import { afterEach, describe, expect, it } from "vitest";

import App from "../App.svelte";
import { createMockHost, type MockHost } from "../ipc/mock";

// jsdom has <dialog> but not its modal methods.
HTMLDialogElement.prototype.showModal ??= function (this: HTMLDialogElement) {
  this.open = true;
};
HTMLDialogElement.prototype.close ??= function (this: HTMLDialogElement) {
  this.open = false;
};

let mounted: ReturnType<typeof mount> | undefined;
afterEach(() => {
  if (mounted) unmount(mounted);
  mounted = undefined;
  document.body.innerHTML = "";
});

async function settle(host: MockHost, until: () => boolean) {
  // Resolves the mock's promises and Svelte's updates; bounded so a broken UI fails, not hangs.
  for (let i = 0; i < 50 && !until(); i++) {
    await Promise.resolve();
    await new Promise((resolve) => setTimeout(resolve, 0));
    flushSync();
  }
  void host;
  return until();
}

function render(host: MockHost) {
  const target = document.createElement("div");
  document.body.append(target);
  mounted = mount(App, { target, props: { host } });
  return target;
}

describe("the window", () => {
  it("guides a first-time user to add the Atlassian app", async () => {
    const host = createMockHost();
    const target = render(host);
    expect(await settle(host, () => target.textContent?.includes("Welcome to Latch") ?? false)).toBe(true);
    expect(target.querySelector("[data-testid=overall]")?.getAttribute("data-tone")).toBe("idle");
  });

  it("shows a card per connector with its state and scope chips", async () => {
    const host = createMockHost({ seeded: true });
    const target = render(host);
    expect(await settle(host, () => target.querySelectorAll("[data-connector]").length === 3)).toBe(true);
    const jira = target.querySelector('[data-connector="jira"]');
    expect(jira?.getAttribute("data-state")).toBe("ok");
    expect(jira?.querySelectorAll('[data-kind="granted"]').length).toBe(5);
    expect(jira?.querySelector('[data-kind="extra"]')?.textContent).toContain("manage:jira-configuration");
    expect(jira?.textContent).toMatch(/Access token expires in (59 min|1 h 00 min)/);
    expect(jira?.textContent).toContain("signed in just now");
    expect(target.querySelector('[data-connector="opsgenie"]')?.getAttribute("data-state")).toBe("credential_missing");
  });

  it("asks a Data Center preset for its base URL and links the instance's application links", async () => {
    const host = createMockHost();
    const target = render(host);
    await settle(host, () => target.textContent?.includes("Welcome to Latch") ?? false);
    const open = [...target.querySelectorAll("button")].find((b) => b.textContent === "Add provider");
    open?.click();
    expect(await settle(host, () => document.querySelector("form[aria-label='Add provider']") !== null)).toBe(true);
    const form = document.querySelector("form[aria-label='Add provider']") as HTMLFormElement;
    const preset = form.querySelector("select[name=preset]") as HTMLSelectElement;
    preset.value = "jira-dc";
    preset.dispatchEvent(new Event("change"));
    expect(await settle(host, () => form.querySelector("input[name=base_url]") !== null)).toBe(true);
    // A Data Center provider may serve PATs only: no client id needed.
    expect((form.querySelector("input[name=client_id]") as HTMLInputElement).required).toBe(false);
    const base = form.querySelector("input[name=base_url]") as HTMLInputElement;
    base.value = "https://jira.corp.example/";
    base.dispatchEvent(new Event("input"));
    expect(
      await settle(host, () =>
        form.querySelector("a[href='https://jira.corp.example/plugins/servlet/applinks/listApplicationLinks']") !== null,
      ),
    ).toBe(true);
  });

  it("follows status events from the host (tray, scheduler, CLI changes)", async () => {
    const host = createMockHost({ seeded: true });
    const target = render(host);
    await settle(host, () => target.querySelector('[data-connector="jira"]') !== null);
    host.setGrantState("atlassian", "needs_login", "invalid_grant");
    expect(await settle(host, () => target.querySelector('[data-connector="jira"]')?.getAttribute("data-state") === "needs_login")).toBe(true);
    expect(target.querySelector("[data-testid=overall]")?.getAttribute("data-tone")).toBe("error");
    const signIn = target.querySelector<HTMLButtonElement>('[data-connector="jira"] [data-action="sign_in"]');
    expect(signIn).not.toBeNull();
    signIn?.click();
    expect(await settle(host, () => target.querySelector('[data-connector="jira"]')?.getAttribute("data-state") === "ok")).toBe(true);
    expect(host.calls.signIn).toBe(1);
  });

  it("lets the person stop a sign-in whose browser never came back", async () => {
    const host = createMockHost({ seeded: true, browser: "waits" });
    const target = render(host);
    await settle(host, () => target.querySelector('[data-connector="opsgenie"]') !== null);
    host.setGrantState("atlassian", "needs_login", "invalid_grant");
    await settle(host, () => target.querySelector('[data-connector="jira"] [data-action="sign_in"]') !== null);
    target.querySelector<HTMLButtonElement>('[data-connector="jira"] [data-action="sign_in"]')?.click();
    const cancel = () => target.querySelector<HTMLButtonElement>('[data-action="cancel_sign_in"]');
    expect(await settle(host, () => cancel() !== null)).toBe(true);
    cancel()?.click();
    expect(await settle(host, () => target.querySelector("[role=status]")?.textContent?.includes("cancelled") ?? false)).toBe(true);
    expect(cancel()).toBeNull();
    expect(target.querySelector("[role=alert]")).toBeNull();
    expect(target.querySelector('[data-connector="jira"]')?.getAttribute("data-state")).toBe("needs_login");
    expect(host.calls.cancelSignIn).toBe(1);
  });

  it("offers the grant's sites when a connector needs one", async () => {
    const host = createMockHost({ seeded: true });
    const target = render(host);
    await settle(host, () => target.querySelector('[data-connector="jira"]') !== null);
    await host.addConnector({ name: "jira-ops", type: "jira", provider: null, auth: null, site: null, email: null, client_id: null });
    const choose = () => target.querySelector<HTMLButtonElement>('[data-connector="jira-ops"] [data-action="choose_site"]');
    expect(await settle(host, () => choose() !== null)).toBe(true);
    choose()?.click();
    const select = () => target.querySelector<HTMLSelectElement>('[data-connector="jira-ops"] select');
    expect(await settle(host, () => select() !== null)).toBe(true);
    expect(Array.from(select()?.options ?? []).map((o) => o.value)).toEqual(["", "acme"]);
    const chosen = select();
    if (chosen) {
      chosen.value = "acme";
      chosen.dispatchEvent(new Event("change"));
    }
    target.querySelector<HTMLButtonElement>('[data-connector="jira-ops"] form button[type=submit]')?.click();
    expect(await settle(host, () => target.querySelector('[data-connector="jira-ops"]')?.getAttribute("data-state") === "ok")).toBe(true);
    expect(host.calls.bindSite).toBe(1);
  });

  it("shows an error by its code and message when a command fails", async () => {
    const host = createMockHost({ seeded: true });
    const target = render(host);
    await settle(host, () => target.querySelector('[data-connector="opsgenie"]') !== null);
    target.querySelector<HTMLButtonElement>('[data-connector="opsgenie"] [data-action="set_credential"]')?.click();
    await settle(host, () => target.querySelector('[data-connector="opsgenie"] input[type=password]') !== null);
    host.setGrantState("atlassian", "refresh_failing", "token endpoint returned 503");
    target.querySelector<HTMLButtonElement>('[data-connector="jira"] [data-action="refresh"]')?.click();
    expect(await settle(host, () => target.querySelector("[role=alert]") !== null)).toBe(true);
    expect(target.querySelector("[role=alert]")?.getAttribute("data-code")).toBe("refresh_failing");
  });

  it("adds a Connect app from its installation payload, without a site field, and names the app on its card", async () => {
    const host = createMockHost({ seeded: true });
    const target = render(host);
    await settle(host, () => target.querySelector('[data-connector="jira"]') !== null);
    [...target.querySelectorAll("button")].find((b) => b.textContent === "Add connector")?.click();
    const form = () => document.querySelector<HTMLFormElement>("form[aria-label='Add connector']");
    expect(await settle(host, () => form() !== null)).toBe(true);
    const auth = form()?.querySelector<HTMLSelectElement>("select[name=auth]");
    if (auth) {
      auth.value = "connect-user";
      auth.dispatchEvent(new Event("change"));
    }
    expect(await settle(host, () => form()?.querySelector("textarea[name=secret]") !== null)).toBe(true);
    expect(form()?.querySelector("input[name=site]")).toBeNull();
    const name = form()?.querySelector<HTMLInputElement>("input[name=name]");
    const account = form()?.querySelector<HTMLInputElement>("input[name=account_id]");
    const payload = form()?.querySelector<HTMLTextAreaElement>("textarea[name=secret]");
    if (!name || !account || !payload) throw new Error("the Connect fields are missing");
    name.value = "jira-app";
    name.dispatchEvent(new Event("input"));
    account.value = "557058:abc";
    account.dispatchEvent(new Event("input"));
    payload.value = JSON.stringify({ key: "acme-app", baseUrl: "https://acme.atlassian.net", sharedSecret: "s3cret", clientKey: "ck" });
    payload.dispatchEvent(new Event("input"));
    flushSync();
    form()?.requestSubmit();
    const card = () => target.querySelector('[data-connector="jira-app"]');
    expect(await settle(host, () => card()?.getAttribute("data-state") === "ok")).toBe(true);
    expect(card()?.textContent).toContain("app acme-app on https://acme.atlassian.net");
    expect(card()?.textContent).toContain("as 557058:abc");
    expect(card()?.textContent).not.toContain("s3cret");
  });

  it("sets up an OAuth 1.0a application link and shows the public key to paste", async () => {
    const host = createMockHost();
    const target = render(host);
    await settle(host, () => target.textContent?.includes("Welcome to Latch") ?? false);
    [...target.querySelectorAll("button")].find((b) => b.textContent === "Add provider")?.click();
    const form = () => document.querySelector<HTMLFormElement>("form[aria-label='Add provider']");
    expect(await settle(host, () => form() !== null)).toBe(true);
    const preset = form()?.querySelector<HTMLSelectElement>("select[name=preset]");
    if (!preset) throw new Error("no preset field");
    preset.value = "jira-dc";
    preset.dispatchEvent(new Event("change"));
    expect(await settle(host, () => form()?.querySelector("select[name=link_type]") !== null)).toBe(true);
    const linkType = form()?.querySelector<HTMLSelectElement>("select[name=link_type]");
    if (!linkType) throw new Error("no link type");
    linkType.value = "oauth1";
    linkType.dispatchEvent(new Event("change"));
    expect(await settle(host, () => form()?.querySelector("input[name=consumer_key]") !== null)).toBe(true);
    expect(form()?.querySelector("input[name=client_id]")).toBeNull();
    const base = form()?.querySelector<HTMLInputElement>("input[name=base_url]");
    if (!base) throw new Error("no base URL");
    base.value = "https://jira.corp.example";
    base.dispatchEvent(new Event("input"));
    flushSync();
    form()?.requestSubmit();
    const shown = () => document.querySelector("[data-testid=public-key]");
    expect(await settle(host, () => shown() !== null)).toBe(true);
    expect(shown()?.textContent).toContain("BEGIN PUBLIC KEY");
    expect(document.querySelector("[data-testid=link-setup]")?.textContent).toContain("latch");
    expect(host.calls.addProvider).toBe(1);
  });
});
