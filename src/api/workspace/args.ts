/** Positional arguments the workspace commands share. */
export const workspaceIdArg = { field: "workspace_id", name: "WORKSPACE_ID" } as const

/** The text before and after the first `=` of an option's value (`NAME=VALUE`). */
const split = (option: string, given: string, needValue: boolean) => {
  const at = given.indexOf("=")
  if (at < 0) return needValue ? { error: `--${option} ${JSON.stringify(given)}: expected NAME=VALUE` } : { name: given }
  return { name: given.slice(0, at), rest: given.slice(at + 1) }
}

/** `secrets` from `--secret NAME=VALUE` and `--secret-file NAME=PATH` (the file is read by this process). */
export const secretsOptions = {
  options: {
    secret: "A secret NAME=VALUE for the workspace's commands (repeatable); its value never comes back in output",
    "secret-file": "A secret NAME=PATH whose value is the host file's text (repeatable)"
  },
  parse: (given: Readonly<Record<string, ReadonlyArray<string>>>) => {
    const secrets: Array<{ name: string; value: string } | { name: string; file_path: string }> = []
    for (const [option, values] of Object.entries(given)) {
      for (const text of values) {
        const part = split(option, text, true)
        if ("error" in part) return { error: part.error }
        secrets.push(option === "secret" ? { name: part.name, value: part.rest! } : { name: part.name, file_path: part.rest! })
      }
    }
    return secrets.length === 0 ? {} : { value: secrets }
  }
} as const

/** `labels` from `--label KEY=VALUE`, repeatable (the value may be empty: `--label KEY=`). */
export const labelOptions = (help: string) => ({
  options: { label: help },
  parse: (given: Readonly<Record<string, ReadonlyArray<string>>>) => {
    const labels: Record<string, string> = {}
    for (const text of given["label"] ?? []) {
      const part = split("label", text, true)
      if ("error" in part) return { error: part.error.replace("NAME=VALUE", "KEY=VALUE") }
      if (Object.hasOwn(labels, part.name)) return { error: `--label ${part.name}: given twice` }
      labels[part.name] = part.rest!
    }
    return Object.keys(labels).length === 0 ? {} : { value: labels }
  }
})

/** `secret_env` from `--secret-env NAME` (the variable named like the secret) or `--secret-env NAME=VARIABLE`. */
export const secretEnvOptions = {
  options: { "secret-env": "Expose the workspace secret NAME to the command as $NAME, or NAME=VARIABLE as $VARIABLE (repeatable)" },
  parse: (given: Readonly<Record<string, ReadonlyArray<string>>>) => {
    const map: Record<string, string> = {}
    for (const text of given["secret-env"] ?? []) {
      const part = split("secret-env", text, false)
      if ("error" in part) return { error: part.error }
      map[part.name] = part.rest ?? part.name
    }
    return Object.keys(map).length === 0 ? {} : { value: map }
  }
} as const

/** `published_ports` from `--publish GUEST_PORT` or `--publish HOST_PORT:GUEST_PORT` (Docker's order), repeatable. */
export const publishOptions = {
  options: { publish: "Publish the service's GUEST_PORT on the host's 127.0.0.1 (a port the host chooses), or HOST_PORT:GUEST_PORT (repeatable)" },
  parse: (given: Readonly<Record<string, ReadonlyArray<string>>>) => {
    const ports: Array<{ guest_port: number; host_port?: number }> = []
    for (const text of given["publish"] ?? []) {
      const match = /^(?:(\d{1,5}):)?(\d{1,5})$/.exec(text)
      if (!match) return { error: `--publish ${JSON.stringify(text)}: expected GUEST_PORT or HOST_PORT:GUEST_PORT` }
      ports.push({ guest_port: Number(match[2]), ...(match[1] !== undefined ? { host_port: Number(match[1]) } : {}) })
    }
    return ports.length === 0 ? {} : { value: ports }
  }
} as const
