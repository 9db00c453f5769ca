/** pyro's version, as `pyro --version`, the MCP server and the SDK report it. */
export const VERSION = "0.1.0"
