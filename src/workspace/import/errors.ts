/**
 * Failures of the workspace import path (seed at create, sync push): one for
 * an entry the host refuses to send, one for a source it cannot use at all.
 * Both are public errors, declared with the contract's; re-exported here for
 * the import's own modules.
 */
export { ImportSourceError, UnsafeImportEntry } from "../../contract/errors.js"
