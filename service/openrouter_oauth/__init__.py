"""An MCP-compliant OAuth 2.1 authorization server in front of OpenRouter's PKCE flow."""

__version__ = "0.1.0"
