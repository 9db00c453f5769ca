// A tool loop in the shape of OpenAI's Responses API, with pyro's vm_run as the tool.
//
//   npm run build && node examples/openai-tool-loop.mjs
//
// Without OPENAI_API_KEY the model's replies come from fixtures/openai-responses.json
// (a recorded exchange); the VMs are real either way. With it, the loop calls
// https://api.openai.com/v1/responses (model: OPENAI_MODEL, default gpt-4.1-mini).
// PYRO_EXAMPLE_ENV picks the environment: `tiny` boots fastest; `debian:12` (git,
// python3, curl, ...) is the natural choice for a real agent.
import { readFileSync } from "node:fs"
import { Pyro } from "../dist/sdk.js"

const environment = process.env.PYRO_EXAMPLE_ENV ?? "tiny"
const task = "Use the sandbox to compute 6 * 7 with the shell, then tell me which OS kernel it runs."

const pyro = new Pyro()

// The model says what to run; the program decides where, so vm_run's `environment`
// is fixed here instead of left to the model. Any tool from toolDefinitions() works
// the same way (vm_create, vm_exec, ...): `parameters` is JSON Schema.
const vmRun = pyro.toolDefinitions().find((t) => t.name === "vm_run")
const { environment: _pinned, ...properties } = vmRun.parameters.properties
const tools = [{
  type: "function",
  name: vmRun.name,
  description: `${vmRun.description} Every call runs in the ${environment} environment.`,
  parameters: { ...vmRun.parameters, properties, required: ["command"] },
  // Strict mode wants every property required; pyro's optional fields have defaults.
  strict: false
}]

const recorded = JSON.parse(readFileSync(new URL("./fixtures/openai-responses.json", import.meta.url), "utf8")).responses

async function createResponse(body) {
  if (!process.env.OPENAI_API_KEY) {
    const next = recorded.shift()
    if (!next) throw new Error("the recorded exchange has no more responses")
    return next
  }
  const response = await fetch("https://api.openai.com/v1/responses", {
    method: "POST",
    headers: { authorization: `Bearer ${process.env.OPENAI_API_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body)
  })
  if (!response.ok) throw new Error(`OpenAI ${response.status}: ${await response.text()}`)
  return response.json()
}

// The tool's result, or its failure, as JSON text for a function_call_output.
// PyroError messages are written for the model (e.g. "invalid_input: mem_mib: ...").
async function runTool(call) {
  try {
    const args = { ...JSON.parse(call.arguments), environment }
    const result = await pyro.callTool(call.name, args)
    console.log(`[tool] ${call.name} ${call.arguments} -> exit_code=${result.exit_code} stdout=${JSON.stringify(result.stdout)}`)
    return JSON.stringify(result)
  } catch (error) {
    console.log(`[tool] ${call.name} ${call.arguments} -> ${error.code ?? "error"}: ${error.message}`)
    return JSON.stringify({ error: error.code ?? "error", message: error.message })
  }
}

const outputText = (response) =>
  response.output
    .filter((item) => item.type === "message")
    .flatMap((item) => item.content.filter((c) => c.type === "output_text").map((c) => c.text))
    .join("\n")

try {
  const input = [{ role: "user", content: task }]
  for (let turn = 1; ; turn++) {
    if (turn > 10) throw new Error("no answer after 10 turns")
    const response = await createResponse({
      model: process.env.OPENAI_MODEL ?? "gpt-4.1-mini",
      instructions: "You can run shell commands in a disposable Linux VM with the vm_run tool.",
      input,
      tools
    })
    // Stateless: the whole conversation goes back each turn, the model's own items included.
    input.push(...response.output)
    const calls = response.output.filter((item) => item.type === "function_call")
    if (calls.length === 0) {
      console.log(`[answer] ${outputText(response)}`)
      break
    }
    for (const call of calls) {
      input.push({ type: "function_call_output", call_id: call.call_id, output: await runTool(call) })
    }
  }
} finally {
  await pyro.close()
}
