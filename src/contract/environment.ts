/** Environment operations: inputs and results. */
import * as Schema from "effect/Schema"
import { EnvironmentName } from "./common.js"

export const EnvironmentInfo = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  description: Schema.String,
  default_packages: Schema.Array(Schema.String),
  distribution: Schema.String,
  distribution_version: Schema.String,
  platform: Schema.String,
  installed: Schema.Boolean
})

/** MCP results are objects, so the list is wrapped. */
export const EnvironmentList = Schema.Struct({ environments: Schema.Array(EnvironmentInfo) })
export type EnvironmentList = typeof EnvironmentList.Type

export const EnvironmentInput = Schema.Struct({ environment: EnvironmentName })
export type EnvironmentInput = typeof EnvironmentInput.Type

export const NoInput = Schema.Struct({})
