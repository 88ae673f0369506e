// An MCP server (TypeScript SDK) whose users pay for their own model calls with their
// OpenRouter key: the same idea as ../mcp_server.py. Node >= 22.18 runs this file as is
// (it strips the types); `npm install && npm start`.
//
// Settings (environment variables): ISSUER_URL (http://127.0.0.1:8000),
// INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET (required: this server's pair in
// the issuer's INTROSPECTION_CREDENTIALS), OPENROUTER_BASE_URL (https://openrouter.ai),
// HOST (127.0.0.1), PORT (8002), PUBLIC_URL (http://HOST:PORT; the MCP endpoint is /mcp),
// MODEL (openrouter/auto).

import { createHash } from "node:crypto";

import { InvalidTokenError, ServerError } from "@modelcontextprotocol/sdk/server/auth/errors.js";
import { requireBearerAuth } from "@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js";
import type { OAuthTokenVerifier } from "@modelcontextprotocol/sdk/server/auth/provider.js";
import {
  getOAuthProtectedResourceMetadataUrl,
  mcpAuthMetadataRouter,
} from "@modelcontextprotocol/sdk/server/auth/router.js";
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js";
import { createMcpExpressApp } from "@modelcontextprotocol/sdk/server/express.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Request, Response } from "express";
import { z } from "zod";

const env = process.env;
const ISSUER_URL = (env.ISSUER_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");
const OPENROUTER_BASE_URL = (env.OPENROUTER_BASE_URL ?? "https://openrouter.ai").replace(/\/$/, "");
const HOST = env.HOST ?? "127.0.0.1";
const PORT = Number(env.PORT ?? "8002");
const PUBLIC_URL = (env.PUBLIC_URL ?? `http://${HOST}:${PORT}`).replace(/\/$/, "");
const MCP_URL = new URL(`${PUBLIC_URL}/mcp`);
const MODEL = env.MODEL ?? "openrouter/auto";
const SCOPE = "openrouter";

type Claims = Record<string, unknown>;
type Entry = { until: number; claims: Claims | null };

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

// Checks keys at {issuer}/introspect (RFC 7662) with this server's own credentials and
// remembers answers for a few seconds, keyed by the key's SHA-256 (the key is not kept).
class IntrospectionVerifier implements OAuthTokenVerifier {
  url: string;
  authorization: string;
  cacheSeconds: number;
  negativeCacheSeconds: number;
  cache = new Map<string, Entry>();

  constructor(issuer: string, clientId: string, clientSecret: string, cacheSeconds = 10, negativeCacheSeconds = 2) {
    this.url = `${issuer}/introspect`;
    this.authorization = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString("base64")}`;
    this.cacheSeconds = cacheSeconds;
    this.negativeCacheSeconds = negativeCacheSeconds;
  }

  async verifyAccessToken(token: string): Promise<AuthInfo> {
    const digest = sha256(token);
    const now = Date.now() / 1000;
    let entry = this.cache.get(digest);
    if (!entry || entry.until <= now) {
      const claims = await this.introspect(token);
      entry = { until: now + (claims ? this.cacheSeconds : this.negativeCacheSeconds), claims };
      this.cache.set(digest, entry);
      this.forgetExpired(now);
    }
    if (!entry.claims) throw new InvalidTokenError("The key is not active");
    return this.authInfo(token, digest, entry);
  }

  // An outage is not the caller's fault: ServerError gives 500, which clients retry with the
  // same key, where a 401 would send the person through a new login.
  async introspect(token: string): Promise<Claims | null> {
    let response: globalThis.Response;
    try {
      response = await fetch(this.url, {
        method: "POST",
        headers: { Authorization: this.authorization, Accept: "application/json" },
        body: new URLSearchParams({ token, token_type_hint: "access_token" }),
        signal: AbortSignal.timeout(5000),
      });
    } catch (error) {
      console.warn(`key check failed, introspection unavailable: ${(error as Error).name}`);
      throw new ServerError("The key could not be checked right now");
    }
    if (response.status !== 200) {
      const hint = response.status === 401 ? " (check INTROSPECTION_CLIENT_ID/SECRET)" : "";
      console.warn(`key check failed, introspection answered ${response.status}${hint}`);
      throw new ServerError("The key could not be checked right now");
    }
    const body = (await response.json()) as Claims;
    return body.active === true ? body : null;
  }

  authInfo(token: string, digest: string, entry: Entry): AuthInfo {
    const claims = entry.claims as Claims;
    const exp = typeof claims.exp === "number" ? claims.exp : undefined;
    return {
      token,
      // Introspection does not name the OAuth client; the key's fingerprint stands in.
      clientId: `key-${digest.slice(0, 16)}`,
      scopes: typeof claims.scope === "string" ? claims.scope.split(" ") : [],
      // requireBearerAuth insists on an expiry. A key without one is vouched for as long as
      // this answer is cached; after that it is checked again.
      expiresAt: exp ?? Math.floor(entry.until),
      extra: { claims },
    };
  }

  forgetExpired(now: number): void {
    if (this.cache.size < 10_000) return;
    for (const [digest, entry] of this.cache) if (entry.until <= now) this.cache.delete(digest);
  }
}

function required(name: string): string {
  const value = env[name];
  if (!value) {
    console.error(`${name} is required (see the top of server.ts)`);
    process.exit(2);
  }
  return value;
}

function buildServer(): McpServer {
  const server = new McpServer({ name: "OpenRouter example (TypeScript)", version: "0.1.0" });
  server.registerTool(
    "ask",
    {
      description: "Ask a model on OpenRouter. Billed to your own OpenRouter key, within its budget.",
      inputSchema: { prompt: z.string(), model: z.string().optional() },
    },
    async ({ prompt, model }, extra) => {
      // The person's own key, to OpenRouter only: never log it or send it elsewhere.
      const key = extra.authInfo?.token;
      if (!key) throw new Error("no key for this request");
      const response = await fetch(`${OPENROUTER_BASE_URL}/api/v1/chat/completions`, {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        body: JSON.stringify({ model: model ?? MODEL, messages: [{ role: "user", content: prompt }] }),
        signal: AbortSignal.timeout(120_000),
      });
      const body = (await response.json().catch(() => ({}))) as {
        choices?: { message?: { content?: string } }[];
        error?: { message?: string };
      };
      if (response.status !== 200) {
        const message = body.error?.message ?? response.statusText;
        return { isError: true, content: [{ type: "text", text: `OpenRouter answered ${response.status}: ${message}` }] };
      }
      return { content: [{ type: "text", text: String(body.choices?.[0]?.message?.content ?? "") }] };
    },
  );
  return server;
}

const verifier = new IntrospectionVerifier(
  ISSUER_URL,
  required("INTROSPECTION_CLIENT_ID"),
  required("INTROSPECTION_CLIENT_SECRET"),
);
// The protected-resource metadata names the issuer; the SDK's router wants its metadata.
const oauthMetadata = await (await fetch(`${ISSUER_URL}/.well-known/oauth-authorization-server`)).json();

const app = createMcpExpressApp({ host: HOST });
app.use(
  mcpAuthMetadataRouter({
    oauthMetadata,
    resourceServerUrl: MCP_URL,
    scopesSupported: [SCOPE],
    resourceName: "OpenRouter example (TypeScript)",
  }),
);
const auth = requireBearerAuth({
  verifier,
  requiredScopes: [SCOPE],
  resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(MCP_URL),
});

// Stateless: a fresh server and transport per request, so any replica can answer any call.
app.post("/mcp", auth, async (req: Request, res: Response) => {
  const server = buildServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on("close", () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res, req.body);
});
app.all("/mcp", auth, (_req: Request, res: Response) => {
  res.status(405).set("Allow", "POST").json({ error: "method_not_allowed" });
});

app.listen(PORT, HOST, () => console.log(`MCP server on ${MCP_URL.href}, keys checked at ${ISSUER_URL}`));
