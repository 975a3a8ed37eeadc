/**
 * The live dashboard: plain HTML, ES modules and CSS from `public/`, served by the bridge itself (no CDN, no build
 * step). The page is public; every piece of data it shows comes from the token-protected API. See docs/dashboard.md.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";

/** Where the page's files live. */
export const DASHBOARD_DIR = fileURLToPath(new URL("./public/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Locks the page to its own origin: no inline script, no third-party anything, no framing. */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join("; ");

export interface DashboardOptions {
  /** URL path of the page. Default "/". Assets are served under "/dashboard/". */
  path?: string;
}

/**
 * Serves the dashboard at `/` and its assets at `/dashboard/*`. Files are read once at registration, so a request
 * never touches the disk and no path from a request ever reaches the file system.
 *
 * @example
 * await registerDashboard(app);
 * // The link carries the token: printed on stdout, never logged.
 * process.stdout.write(`dashboard: ${dashboardLink("http://127.0.0.1:8080", token)}\n`);
 */
export async function registerDashboard(app: FastifyInstance, options: DashboardOptions = {}): Promise<void> {
  const files = loadFiles(DASHBOARD_DIR);
  const index = files.get("index.html");
  if (index === undefined) throw new Error(`dashboard index.html missing in ${DASHBOARD_DIR}`);
  await app.register(async (scope) => {
    scope.addHook("onSend", async (_request, reply, payload) => {
      reply.header("content-security-policy", DASHBOARD_CSP);
      reply.header("x-content-type-options", "nosniff");
      reply.header("referrer-policy", "no-referrer");
      return payload;
    });
    scope.get(options.path ?? "/", async (_request, reply) =>
      reply.type(index.type).header("cache-control", "no-cache").send(index.body),
    );
    for (const [name, file] of files) {
      if (name === "index.html") continue;
      scope.get(`/dashboard/${name}`, async (_request, reply) =>
        reply.type(file.type).header("cache-control", "no-cache").send(file.body),
      );
    }
  });
}

/**
 * A link that opens the dashboard already signed in: the token rides in the URL fragment, which browsers never
 * send to the server, and the page moves it into sessionStorage and removes it from the address bar.
 */
export function dashboardLink(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/#token=${encodeURIComponent(token)}`;
}

function loadFiles(dir: string): Map<string, { body: Buffer; type: string }> {
  const out = new Map<string, { body: Buffer; type: string }>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const ext = name.slice(name.lastIndexOf("."));
      const type = TYPES[ext];
      if (type === undefined) continue;
      out.set(relative(dir, path).split(sep).join("/"), { body: readFileSync(path), type });
    }
  };
  walk(dir);
  return out;
}
