import { tauriHost, type ConnectorStatus, type Host } from "./ipc";

function card(connector: ConnectorStatus): HTMLElement {
  const item = document.createElement("li");
  item.className = `connector state-${connector.state}`;
  const title = document.createElement("strong");
  title.textContent = `${connector.display_name} (${connector.name})`;
  const state = document.createElement("span");
  state.className = "badge";
  state.textContent = connector.state.replaceAll("_", " ");
  const scopes = document.createElement("p");
  scopes.textContent = `scopes: ${connector.scopes.required.join(" ")}`;
  item.append(title, " ", state, scopes);
  return item;
}

async function render(host: Host, root: HTMLElement): Promise<void> {
  try {
    const report = await host.status();
    root.replaceChildren();
    if (report.connectors.length === 0) {
      const empty = document.createElement("p");
      empty.textContent =
        "No connectors yet. Add a provider and a connector with the latch CLI: " +
        "latch provider add atlassian --client-id ID, then latch connector add jira.";
      root.append(empty);
      return;
    }
    const list = document.createElement("ul");
    list.append(...report.connectors.map(card));
    root.append(list);
  } catch (error: unknown) {
    const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "unknown";
    root.textContent = `Latch could not load its status (${code}).`;
  }
}

const root = document.getElementById("app");
if (root) {
  void render(tauriHost, root);
}
