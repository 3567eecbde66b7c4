// A small history router: the server answers every console path with index.html.

import { createContext, useContext, useEffect, useState } from "react";

type Location = { path: string; search: URLSearchParams };

const read = (): Location => ({
  path: window.location.pathname,
  search: new URLSearchParams(window.location.search),
});

const RouterContext = createContext<Location>(read());

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
  window.scrollTo(0, 0);
}

export function Router(props: { children: React.ReactNode }) {
  const [location, setLocation] = useState(read());
  useEffect(() => {
    const update = () => setLocation(read());
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return <RouterContext.Provider value={location}>{props.children}</RouterContext.Provider>;
}

export const useLocation = () => useContext(RouterContext);

/** `match("/integrations/:id", path)` → {id} or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split("/").filter(Boolean);
  const got = path.split("/").filter(Boolean);
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(got[i]);
    else if (want[i] !== got[i]) return null;
  }
  return params;
}

/** An in-app link (a real <a href>, so it opens in a new tab too). */
export function Link(props: React.AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }) {
  const { to, ...rest } = props;
  return (
    <a
      {...rest}
      href={to}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(to);
      }}
    />
  );
}
