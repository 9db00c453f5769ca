/**
 * @xterm/headless 6 names an ES module entry it does not ship (`module`:
 * lib/xterm.mjs), which Vite-based tools follow and fail on; its real ES
 * module is imported by path instead, typed as the package.
 */
declare module "@xterm/headless/lib-headless/xterm-headless.mjs" {
  export { Terminal } from "@xterm/headless"
}
