/**
 * pyro as a library. Effect programs use the services and layers; everyone
 * else uses the `Pyro` Promise facade.
 */
export { type ProfileOption, Pyro, PyroError, type PyroOptions, type ToolDefinition } from "../sdk/Pyro.js"
// The contract: schemas for every input and result, and errors.
export * from "../contract/common.js"
export * from "../contract/environment.js"
export * from "../contract/errors.js"
export * from "../contract/vm.js"
export * from "../contract/workspace/exec.js"
export * from "../contract/workspace/export.js"
export * from "../contract/workspace/files.js"
export * from "../contract/workspace/lifecycle.js"
export * from "../contract/workspace/paths.js"
export * from "../contract/workspace/sync.js"
// The operations table: each public operation with its schemas and handler.
export * from "../api/index.js"
// MCP tool profiles: which tools a model sees, and how narrowly.
export { DEFAULT_MCP_PROFILE, MCP_PROFILES, type McpProfile, PROFILES, profileOperations } from "../api/profiles.js"
// Effect services and their layers.
export { appLayer, servicesLayer } from "../layers/App.js"
export { layerWith as PyroConfigWith, PyroConfigLive } from "../layers/PyroConfigLive.js"
export { EnvironmentStore } from "../services/EnvironmentStore.js"
export { KernelStore } from "../services/KernelStore.js"
export { Progress, ProgressSilent, type ProgressEvent } from "../services/Progress.js"
export { PyroConfig } from "../services/PyroConfig.js"
export { VmManager } from "../services/VmManager.js"
export { WorkspaceManager } from "../services/WorkspaceManager.js"
export { Vmm } from "../services/Vmm.js"
export { createMcpServer } from "../mcp/server.js"
