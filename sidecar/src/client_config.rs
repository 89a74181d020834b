//! MCP client configuration snippets (being written).
