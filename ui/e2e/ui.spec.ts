// A person's first run, in the built UI over the mock host: add the Atlassian app, add Jira,
// sign in, see scope chips, add Confluence (step-up), create a key (shown once) and revoke it,
// watch activity arrive live, read the health report. Screenshots go to target/ui-e2e/.
import { expect, test, type Page } from "@playwright/test";

const SHOTS = "../target/ui-e2e/screenshots";

async function shot(page: Page, name: string) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

test("first run: provider, connector, sign-in, scope chips, keys, activity, health", async ({ page }) => {
  await page.goto("/");
  await expect(page.getByRole("heading", { name: "Welcome to Latch" })).toBeVisible();
  await shot(page, "01-empty");

  // Add provider with the Atlassian preset: the callback to register is shown exactly.
  await page.getByRole("button", { name: "Add the Atlassian app" }).click();
  const providerForm = page.getByRole("form", { name: "Add provider" });
  await expect(providerForm.getByTestId("callback-url")).toHaveText("http://127.0.0.1:8734/callback");
  await expect(providerForm).toContainText("read:jira-work");
  await shot(page, "02-add-provider");
  await providerForm.getByLabel("Client id").fill("Xy12ClientId");
  await providerForm.getByLabel("Client secret").fill("client-secret-value");
  await providerForm.getByRole("button", { name: "Add provider" }).click();
  await expect(page.getByRole("status")).toContainText("Added provider atlassian");
  await expect(page.getByRole("table", { name: "Providers" })).toContainText("Xy12ClientId");
  await expect(page.getByRole("table", { name: "Providers" })).not.toContainText("client-secret-value");

  // Add connector: the scope diff shows before anything is saved.
  await page.getByRole("button", { name: "Add a connector" }).click();
  const connectorForm = page.getByRole("form", { name: "Add connector" });
  await expect(connectorForm.locator('[data-diff="added"]')).toHaveCount(5);
  await expect(connectorForm).toContainText("+ read:jira-work");
  await connectorForm.getByRole("button", { name: "Add connector" }).click();
  const jira = page.locator('[data-connector="jira"]');
  await expect(jira).toHaveAttribute("data-state", "not_signed_in");
  await expect(jira.locator('[data-kind="requested"]')).toHaveCount(5);

  // Sign in: the card turns ready and every chip is granted.
  await jira.getByRole("button", { name: "Sign in" }).click();
  await expect(jira).toHaveAttribute("data-state", "ok");
  await expect(jira.locator('[data-kind="granted"]')).toHaveCount(5);
  await expect(jira).toContainText(/Access token expires in/);
  await expect(page.getByTestId("overall")).toHaveAttribute("data-tone", "ok");

  // A second connector of the same provider: shared scopes, new ones, and a step-up.
  await page.getByRole("button", { name: "Add connector" }).first().click();
  await connectorForm.getByLabel("Product").selectOption("confluence");
  await expect(connectorForm.locator('[data-diff="shared"]')).toHaveCount(2);
  await expect(connectorForm).toContainText("Latch will ask you to re-consent");
  await shot(page, "03-add-connector-diff");
  await connectorForm.getByRole("button", { name: "Add connector" }).click();
  const confluence = page.locator('[data-connector="confluence"]');
  await expect(confluence).toHaveAttribute("data-state", "needs_step_up");
  await expect(confluence.locator('[data-kind="missing"]')).toHaveCount(4);
  await expect(confluence.locator('[data-kind="missing"]').first()).toHaveAttribute("title", /asked for by confluence/);
  await expect(page.getByTestId("overall")).toHaveAttribute("data-tone", "error");
  await shot(page, "04-connectors-step-up");
  await confluence.getByRole("button", { name: "Re-consent" }).click();
  await expect(confluence).toHaveAttribute("data-state", "ok");

  // Local keys: created, shown once, listed, revoked.
  await page.getByRole("tab", { name: "Local keys" }).click();
  const keyForm = page.getByRole("form", { name: "Create key" });
  await keyForm.getByLabel("Name").fill("ci-bot");
  await keyForm.getByLabel("jira").check();
  await keyForm.getByRole("button", { name: "Create key" }).click();
  await expect(page.getByTestId("new-key")).toHaveText(/^latch_mock_ci-bot_/);
  await shot(page, "05-key-shown-once");
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page.getByTestId("new-key")).toHaveCount(0);
  const row = page.locator('[data-key="ci-bot"]');
  await expect(row).toHaveAttribute("data-revoked", "no");
  await row.getByRole("button", { name: "Revoke" }).click();
  await expect(row).toHaveAttribute("data-revoked", "yes");

  // Activity updates live as the proxy records requests.
  await page.getByRole("tab", { name: "Activity" }).click();
  await expect(page.getByText("No requests yet")).toBeVisible();
  await page.evaluate(() => {
    const mock = (globalThis as unknown as { latchMock: { recordRequest(e: object): void } }).latchMock;
    mock.recordRequest({ key: "ci-bot", connector: "jira", method: "GET", path: "/jira/rest/api/3/myself", status: 200, bytes: 512, latency_us: 48_000, refreshed: false });
  });
  await expect(page.getByRole("table", { name: "Audit log" })).toContainText("/jira/rest/api/3/myself");

  // Health: findings with fixes; the report is exported.
  await page.getByRole("tab", { name: "Health" }).click();
  await expect(page.getByText("Healthy")).toBeVisible();
  await page.getByRole("button", { name: "Export admin report" }).click();
  await expect(page.getByRole("status")).toContainText("latch-report-");
});

test("a service account and an API token, without an app or a sign-in", async ({ page }) => {
  await page.goto("/");
  await page.getByRole("button", { name: "Add a connector with its own credential" }).click();
  const form = page.getByRole("form", { name: "Add connector" });
  // Every auth mode the connector allows, by name; each asks for what it needs.
  await expect(form.getByLabel("Credential").locator("option")).toHaveText([
    "You, in the browser",
    "Service account (OAuth client)",
    "API token",
    "Connect app (as the app)",
    "Connect app (acting as a user)",
    "Anonymous (no credential)",
  ]);
  await form.getByLabel("Credential").selectOption("service");
  await form.getByLabel("Name").fill("jira-svc");
  await form.getByLabel("Site").fill("acme");
  await form.getByLabel("Service account client id").fill("svc-client");
  await form.locator("input[name=secret]").fill("svc-secret-value");
  await expect(form).toContainText("does not change");
  await shot(page, "06-add-service-account");
  await form.getByRole("button", { name: "Add connector" }).click();
  const svc = page.locator('[data-connector="jira-svc"]');
  await expect(svc).toHaveAttribute("data-state", "ok");
  await expect(page.locator("body")).not.toContainText("svc-secret-value");

  await page.getByRole("button", { name: "Add connector" }).first().click();
  await form.getByLabel("Credential").selectOption("api-token");
  await form.getByLabel("Name").fill("wiki");
  await form.getByLabel("Product").selectOption("confluence");
  await form.getByLabel("Credential").selectOption("api-token");
  await form.getByLabel("Site").fill("acme");
  await form.getByLabel("Account e-mail").fill("me@example.com");
  await form.locator("input[name=secret]").fill("api-token-value");
  await form.getByLabel("Expires").fill("2099-01-31");
  await form.getByRole("button", { name: "Add connector" }).click();
  const wiki = page.locator('[data-connector="wiki"]');
  await expect(wiki).toHaveAttribute("data-state", "ok");
  await expect(page.getByRole("status")).toContainText("scoped API token");
  // Without a credential, a card says so and offers to set it.
  await page.getByRole("button", { name: "Add connector" }).first().click();
  await form.getByLabel("Product").selectOption("opsgenie");
  await form.getByRole("button", { name: "Add connector" }).click();
  const ops = page.locator('[data-connector="opsgenie"]');
  await expect(ops).toHaveAttribute("data-state", "credential_missing");
  await expect(ops.getByRole("button", { name: "Set credential" })).toBeVisible();
});

test("seeded views, keyboard navigation and both themes", async ({ page }) => {
  await page.goto("/?seeded");
  await expect(page.locator("[data-connector]")).toHaveCount(3);
  await shot(page, "10-connectors");

  // Keyboard: Alt+2 opens keys; arrows move along the tabs.
  await page.keyboard.press("Alt+2");
  await expect(page.getByRole("tab", { name: "Local keys" })).toHaveAttribute("aria-selected", "true");
  await page.getByRole("tab", { name: "Local keys" }).focus();
  await page.keyboard.press("ArrowDown");
  await expect(page.getByRole("tab", { name: "Activity" })).toHaveAttribute("aria-selected", "true");
  await expect(page.getByRole("tab", { name: "Activity" })).toBeFocused();
  await expect(page.getByRole("table", { name: "Audit log" })).toContainText("/confluence/wiki/api/v2/pages");
  await shot(page, "11-activity");
  await page.getByLabel("Key").selectOption("agent");
  await expect(page.getByRole("table", { name: "Audit log" })).not.toContainText("/jira/rest/api/3/myself");

  await page.keyboard.press("Alt+4");
  await expect(page.getByText("Needs attention").or(page.getByText("Healthy"))).toBeVisible();
  await shot(page, "12-health");

  // Escape closes a dialog; focus stays usable.
  await page.keyboard.press("Alt+1");
  await page.getByRole("button", { name: "Add connector" }).click();
  await expect(page.getByRole("form", { name: "Add connector" })).toBeVisible();
  await page.keyboard.press("Escape");
  await expect(page.getByRole("form", { name: "Add connector" })).toBeHidden();

  await page.keyboard.press("Alt+5");
  await page.getByLabel("Theme").selectOption("dark");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "dark");
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(background).toBe("rgb(20, 23, 27)");
  await page.keyboard.press("Alt+1");
  await shot(page, "13-connectors-dark");
  await page.keyboard.press("Alt+5");
  await page.getByLabel("Theme").selectOption("light");
  await expect(page.locator("html")).toHaveAttribute("data-theme", "light");

  // "System" follows the desktop's preference; an explicit choice overrides it.
  const bodyBackground = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: "dark" });
  expect(await bodyBackground()).toBe("rgb(246, 247, 249)");
  await page.getByLabel("Theme").selectOption("system");
  await expect(page.locator("html")).not.toHaveAttribute("data-theme", /.*/);
  expect(await bodyBackground()).toBe("rgb(20, 23, 27)");
  await page.emulateMedia({ colorScheme: "light" });
  expect(await bodyBackground()).toBe("rgb(246, 247, 249)");
});

test("an MCP server's provider needs no app: Latch registers itself at the first sign-in", async ({ page }) => {
  await page.goto("/");
  await page.getByRole("button", { name: "Add the Atlassian app" }).click();
  const form = page.getByRole("form", { name: "Add provider" });
  await form.getByLabel("Preset").selectOption("atlassian-mcp");
  await expect(form.getByTestId("mcp-setup")).toContainText("registers itself");
  await expect(form.getByTestId("mcp-setup")).toContainText("http://127.0.0.1:8735/callback");
  await expect(form.getByLabel("Client id")).toHaveCount(0);
  await form.getByRole("button", { name: "Add provider" }).click();
  await expect(page.getByRole("status")).toContainText("Added provider atlassian-mcp");

  // A key for the MCP server can be limited to some of its tools.
  await page.getByRole("button", { name: "Add a connector" }).click();
  const connectorForm = page.getByRole("form", { name: "Add connector" });
  await connectorForm.getByLabel("Product").selectOption("mcp");
  await connectorForm.getByRole("button", { name: "Add connector" }).click();
  await page.getByRole("tab", { name: "Local keys" }).click();
  const keyForm = page.getByRole("form", { name: "Create key" });
  await expect(keyForm.getByLabel("MCP tools")).toHaveCount(0);
  await keyForm.getByLabel("Name").fill("agent");
  await keyForm.getByLabel("mcp").check();
  await keyForm.getByLabel("MCP tools").fill("search, getJiraIssue");
  await keyForm.getByRole("button", { name: "Create key" }).click();
  await page.getByRole("button", { name: "Done" }).click();
  await expect(page.locator('[data-key="agent"]').getByTestId("key-tools")).toHaveText("tools: search getJiraIssue");
});
