// The official MCP TypeScript SDK client, logging in to an MCP server through the
// authorization server under test (ACCESS_TOKENS=bound), for tests/e2e/test_bound_mcp.py.
//
//   node ts_client.mjs <MCP URL> <issuer URL> <access token seconds> <example cache seconds>
//
// It plays the person too (consent page, the fake OpenRouter's page, the callback), then:
// calls `ask`, waits for the access token to expire and calls again (the SDK refreshes by
// itself), revokes the token, checks that the server now answers 401, and logs in again.
// The last line of its output is a JSON summary; nothing else is printed.

import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mcpUrl, issuer, accessSeconds, cacheSeconds] = process.argv.slice(2);
const REDIRECT = "http://127.0.0.1:33419/oauth/callback";
const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));
const unescapeHtml = (text) =>
  text.replaceAll("&quot;", '"').replaceAll("&#x27;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");

// The browser: a cookie jar and the pages a person clicks through.
class Browser {
  cookies = new Map();

  async fetch(url, init = {}) {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    const response = await fetch(url, { ...init, redirect: "manual", headers: { ...init.headers, cookie } });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const at = pair.indexOf("=");
      this.cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1));
    }
    return response;
  }

  post(url, fields) {
    return this.fetch(url, {
      method: "POST",
      body: new URLSearchParams(fields),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
  }

  // Consent page → Approve → OpenRouter's page → Authorize → callback: our code.
  async login(authorizationUrl) {
    const consent = await this.fetch(authorizationUrl);
    const ticket = /name="ticket" value="([^"]+)"/.exec(await consent.text())[1];
    const toOpenRouter = await this.post(new URL("/authorize", issuer), { ticket: unescapeHtml(ticket), action: "approve" });
    const openrouter = toOpenRouter.headers.get("location");
    const page = await (await this.fetch(openrouter)).text();
    const fields = Object.fromEntries(
      [...page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], unescapeHtml(m[2])]),
    );
    const approved = await this.post(new URL("/auth/approve", openrouter), { ...fields, decision: "approve", limit: "" });
    const landing = await this.fetch(approved.headers.get("location"));
    return new URL(landing.headers.get("location")).searchParams.get("code");
  }
}

// The SDK's OAuthClientProvider, in memory; it records every token it is given.
class Provider {
  browser = new Browser();
  seen = [];
  logins = 0;
  code = undefined;
  client = undefined;
  saved = undefined;
  verifier = undefined;

  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata() {
    return {
      client_name: "MCP TypeScript SDK test",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(information) {
    this.client = information;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
    this.seen.push(tokens.access_token, tokens.refresh_token ?? "");
  }
  async redirectToAuthorization(url) {
    this.logins += 1;
    this.code = await this.browser.login(url.href);
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  // The SDK drops what the server refused (a revoked grant's refresh token) and logs in anew.
  invalidateCredentials(scope) {
    if (scope === "all" || scope === "tokens") this.saved = undefined;
    if (scope === "all" || scope === "client") this.client = undefined;
    if (scope === "all" || scope === "verifier") this.verifier = undefined;
  }
}

// A connected client, logging in first if the server asks for it (the SDK's own flow).
async function connected(provider) {
  const url = new URL(mcpUrl);
  try {
    const client = new Client({ name: "ts-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
    return client;
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  await new StreamableHTTPClientTransport(url, { authProvider: provider }).finishAuth(provider.code);
  const client = new Client({ name: "ts-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
  return client;
}

const text = (result) => ({ error: Boolean(result.isError), text: result.content?.[0]?.text ?? "" });

const provider = new Provider();
const client = await connected(provider);
const first = text(await client.callTool({ name: "ask", arguments: { prompt: "first" } }));
const firstRefresh = provider.saved.refresh_token;
await sleep(Number(accessSeconds) + 0.5); // the access token has expired
const second = text(await client.callTool({ name: "ask", arguments: { prompt: "second" } }));
const refreshed = provider.saved.refresh_token !== firstRefresh;
const loginsBeforeRevoke = provider.logins;
await client.close();

const revoked = await fetch(new URL("/revoke", issuer), {
  method: "POST",
  body: new URLSearchParams({ token: provider.saved.access_token, client_id: provider.client.client_id }),
});
await sleep(Number(cacheSeconds) + 0.1);
const afterRevoke = await fetch(mcpUrl, {
  method: "POST",
  headers: { authorization: `Bearer ${provider.saved.access_token}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
});

const again = await connected(provider);
const third = text(await again.callTool({ name: "ask", arguments: { prompt: "again" } }));
await again.close();

console.log(
  JSON.stringify({
    first,
    second,
    third,
    refreshed,
    loginsBeforeRevoke,
    logins: provider.logins,
    revokeStatus: revoked.status,
    afterRevokeStatus: afterRevoke.status,
    seen: provider.seen,
  }),
);
