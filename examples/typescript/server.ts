// An MCP server (TypeScript SDK) whose users pay for their own model calls with their
// OpenRouter key: the same idea as ../mcp_server.py. Node >= 22.18 runs this file as is
// (it strips the types); `npm install && npm start`.
//
// Settings (environment variables): ISSUER_URL (http://127.0.0.1:8000),
// INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET (required: this server's pair in
// the issuer's INTROSPECTION_CREDENTIALS), OPENROUTER_BASE_URL (https://openrouter.ai),
// HOST (127.0.0.1), PORT (8002), PUBLIC_URL (http://HOST:PORT; the MCP endpoint is /mcp),
// MODEL (openrouter/auto), CACHE_SECONDS (10: how long an introspection answer is reused,
// so how long a revoked token still works here), ACCESS_TOKENS (openrouter-key).
//
// ACCESS_TOKENS=bound, as on the issuer: the bearer token is the issuer's own token, not
// the key. It is accepted only if introspection says its audience (aud) is this server's
// PUBLIC_URL/mcp, and the key comes from one token exchange (RFC 8693) per token, kept
// until the token expires. The client id and secret are then this server's entry in the
// issuer's RESOURCE_SERVERS, whose resource is PUBLIC_URL/mcp.

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
const BOUND = (env.ACCESS_TOKENS ?? "openrouter-key") === "bound";
const CACHE_SECONDS = Number(env.CACHE_SECONDS ?? "10");

type Claims = Record<string, unknown>;
type Entry = { until: number; claims: Claims | null };
type Exchanged = { until: number; key: string };

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
// RFC 8707 resources compared as MCP's canonical URIs: scheme and host in lower case, no
// default port, no trailing slash (URL does the first two).
const canonical = (uri: string): string => {
  try {
    return new URL(uri).href.replace(/\/$/, "");
  } catch {
    return "";
  }
};

// Checks keys at {issuer}/introspect (RFC 7662) with this server's own credentials and
// remembers answers for a few seconds, keyed by the key's SHA-256 (the key is not kept).
class IntrospectionVerifier implements OAuthTokenVerifier {
  url: string;
  authorization: string;
  cacheSeconds: number;
  negativeCacheSeconds: number;
  cache = new Map<string, Entry>();
  tokenUrl: string;
  resource: string | null;
  keys = new Map<string, Exchanged>();
  exchanges = new Map<string, Promise<string | null>>();

  constructor(
    issuer: string,
    clientId: string,
    clientSecret: string,
    resource: string | null,
    cacheSeconds = 10,
    negativeCacheSeconds = 2,
  ) {
    this.url = `${issuer}/introspect`;
    this.tokenUrl = `${issuer}/token`;
    this.resource = resource;
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
    if (!this.resource) return this.authInfo(token, digest, entry, token);
    if (typeof entry.claims.aud !== "string" || canonical(entry.claims.aud) !== canonical(this.resource)) {
      throw new InvalidTokenError("The token was not issued for this server");
    }
    const key = await this.exchangedKey(token, digest);
    if (!key) throw new InvalidTokenError("The token's grant has ended");
    return this.authInfo(token, digest, entry, key);
  }

  // Bound mode: the key behind the token, cached until the token expires; concurrent
  // requests with a new token share one exchange.
  async exchangedKey(token: string, digest: string): Promise<string | null> {
    const cached = this.keys.get(digest);
    if (cached && cached.until > Date.now() / 1000) return cached.key;
    let pending = this.exchanges.get(digest);
    if (!pending) {
      pending = this.exchange(token, digest).finally(() => this.exchanges.delete(digest));
      this.exchanges.set(digest, pending);
    }
    return pending;
  }

  async exchange(token: string, digest: string): Promise<string | null> {
    const response = await this.post(this.tokenUrl, {
      grant_type: "urn:ietf:params:oauth:grant-type:token-exchange",
      subject_token: token,
      subject_token_type: "urn:ietf:params:oauth:token-type:access_token",
    });
    const body = (await response.json().catch(() => ({}))) as Claims;
    if (response.status === 400 && body.error === "invalid_grant") return null;
    if (response.status !== 200 || typeof body.access_token !== "string" || typeof body.expires_in !== "number") {
      console.warn(`token exchange failed, the issuer answered ${response.status}`);
      throw new ServerError("The key could not be obtained right now");
    }
    this.keys.set(digest, { until: Date.now() / 1000 + body.expires_in, key: body.access_token });
    return body.access_token;
  }

  // A call with this server's own credentials; no answer at all is an outage.
  async post(url: string, form: Record<string, string>): Promise<globalThis.Response> {
    try {
      return await fetch(url, {
        method: "POST",
        headers: { Authorization: this.authorization, Accept: "application/json" },
        body: new URLSearchParams(form),
        signal: AbortSignal.timeout(5000),
      });
    } catch (error) {
      console.warn(`key check failed, the issuer is unavailable: ${(error as Error).name}`);
      throw new ServerError("The key could not be checked right now");
    }
  }

  // An outage is not the caller's fault: ServerError gives 500, which clients retry with the
  // same key, where a 401 would send the person through a new login.
  async introspect(token: string): Promise<Claims | null> {
    const response = await this.post(this.url, { token, token_type_hint: "access_token" });
    if (response.status !== 200) {
      const hint = response.status === 401 ? " (check INTROSPECTION_CLIENT_ID/SECRET)" : "";
      console.warn(`key check failed, introspection answered ${response.status}${hint}`);
      throw new ServerError("The key could not be checked right now");
    }
    const body = (await response.json()) as Claims;
    return body.active === true ? body : null;
  }

  authInfo(token: string, digest: string, entry: Entry, key: string): AuthInfo {
    const claims = entry.claims as Claims;
    const exp = typeof claims.exp === "number" ? claims.exp : undefined;
    return {
      token,
      // A bound token names its OAuth client; for a key, introspection does not, and the
      // key's fingerprint stands in.
      clientId: this.resource && typeof claims.client_id === "string" ? claims.client_id : `key-${digest.slice(0, 16)}`,
      scopes: typeof claims.scope === "string" ? claims.scope.split(" ") : [],
      // requireBearerAuth insists on an expiry. A key without one is vouched for as long as
      // this answer is cached; after that it is checked again.
      expiresAt: exp ?? Math.floor(entry.until),
      ...(this.resource ? { resource: new URL(this.resource) } : {}),
      extra: { claims, key },
    };
  }

  forgetExpired(now: number): void {
    if (this.cache.size < 10_000) return;
    for (const [digest, entry] of this.cache) if (entry.until <= now) this.cache.delete(digest);
    for (const [digest, entry] of this.keys) if (entry.until <= now) this.keys.delete(digest);
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
      const key = extra.authInfo?.extra?.key;
      if (typeof key !== "string" || !key) throw new Error("no key for this request");
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
  BOUND ? MCP_URL.href : null,
  CACHE_SECONDS,
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
