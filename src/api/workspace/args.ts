/** Positional arguments the workspace commands share. */
export const workspaceIdArg = { field: "workspace_id", name: "WORKSPACE_ID" } as const
