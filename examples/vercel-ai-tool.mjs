// pyro's vm_run as a tool for the Vercel AI SDK and for LangChain.js, without
// depending on either: both accept a plain JSON Schema once wrapped.
//
//   Vercel AI SDK (v5 `inputSchema`; v4 calls it `parameters`):
//     import { generateText, jsonSchema, stepCountIs, tool } from "ai"
//     const vmRun = pyroVmRunTool(pyro)
//     const tools = { vm_run: tool({ ...vmRun, inputSchema: jsonSchema(vmRun.parameters) }) }
//     await generateText({ model, tools, stopWhen: stepCountIs(5), prompt: "..." })
//
//   LangChain.js:
//     import { tool } from "@langchain/core/tools"
//     const t = pyroVmRunLangChainTool(pyro)
//     const vmRun = tool((input) => t.invoke(input), { name: t.name, description: t.description, schema: t.schema })
//
// Run directly (`npm run build && node examples/vercel-ai-tool.mjs`), it calls the tool
// once, as a model would, and prints the result. PYRO_EXAMPLE_ENV picks the
// environment (default `tiny`, quickest to boot; `debian:12` is what agents want).
import { pathToFileURL } from "node:url"
import { Pyro } from "../dist/sdk.js"

/**
 * vm_run with the environment chosen by the program, not the model. `parameters`
 * and `inputSchema` are the same JSON Schema object: what `jsonSchema()` from `ai`
 * takes. A failure rejects with a PyroError whose message is written for the
 * model; the AI SDK hands it back to the model as a tool error.
 */
export function pyroVmRunTool(pyro, { environment = "debian:12" } = {}) {
  const vmRun = pyro.toolDefinitions().find((t) => t.name === "vm_run")
  const { environment: _pinned, ...properties } = vmRun.parameters.properties
  const parameters = { ...vmRun.parameters, properties, required: ["command"] }
  return {
    description: `${vmRun.description} Every call runs in the ${environment} environment.`,
    inputSchema: parameters,
    parameters,
    execute: (input) => pyro.runInVm({ ...input, environment })
  }
}

/** The same tool in LangChain's shape: `invoke` returns the JSON text a ToolMessage carries. */
export function pyroVmRunLangChainTool(pyro, options) {
  const { description, parameters, execute } = pyroVmRunTool(pyro, options)
  return {
    name: "vm_run",
    description,
    schema: parameters,
    invoke: async (input) => JSON.stringify(await execute(input))
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const pyro = new Pyro()
  try {
    const vmRun = pyroVmRunTool(pyro, { environment: process.env.PYRO_EXAMPLE_ENV ?? "tiny" })
    // What the AI SDK does with a model's tool call: execute(input, { toolCallId, messages, abortSignal }).
    const result = await vmRun.execute({ command: "echo \"hello from $(uname -s)\"", timeout_seconds: 20 }, {
      toolCallId: "call_1",
      messages: []
    })
    console.log(JSON.stringify(result, null, 2))
  } finally {
    await pyro.close()
  }
}
