// Light, dark, or the system's choice; remembered in the webview's storage (not a secret).
export type Theme = "system" | "light" | "dark";

const KEY = "latch.theme";

export function storedTheme(): Theme {
  const value = globalThis.localStorage?.getItem(KEY);
  return value === "light" || value === "dark" ? value : "system";
}

export function applyTheme(theme: Theme): void {
  const root = document.documentElement;
  if (theme === "system") root.removeAttribute("data-theme");
  else root.setAttribute("data-theme", theme);
  globalThis.localStorage?.setItem(KEY, theme);
}
