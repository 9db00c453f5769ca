/**
 * JSON Schema for MCP tools from the contract's Effect schemas, tidied for the
 * models that read it: integer refs inlined, Effect's generated titles
 * dropped, descriptions and defaults kept.
 */
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

type Json = { [key: string]: unknown }

const tidy = (node: unknown, defs: Json): unknown => {
  if (Array.isArray(node)) return node.map((n) => tidy(n, defs))
  if (node === null || typeof node !== "object") return node
  const obj = node as Json
  // { allOf: [{ $ref: Int, minimum, ... }], description } -> { type: integer, minimum, ..., description }
  if (Array.isArray(obj["allOf"]) && obj["allOf"].length === 1) {
    const { allOf, ...rest } = obj
    return tidy({ ...(allOf as Array<Json>)[0], ...rest }, defs)
  }
  const out: Json = {}
  for (const [key, value] of Object.entries(obj)) {
    if (key === "title" || key === "$schema" || key === "$defs") continue
    if (key === "$ref" && typeof value === "string" && value.startsWith("#/$defs/")) {
      const target = defs[value.slice("#/$defs/".length)] as Json | undefined
      if (target) {
        Object.assign(out, tidy({ ...target, ...obj, $ref: undefined, title: undefined }, defs))
        continue
      }
    }
    if (value === undefined) continue
    // Effect's default descriptions ("an integer", "a string at least 1 character(s) long") add nothing.
    if (key === "description" && typeof value === "string" && /^(an? |a string )/.test(value)) continue
    out[key] = tidy(value, defs)
  }
  return out
}

const made = new WeakMap<Schema.Schema<any, any>, Json>()

/**
 * Made once per schema (every tools/list and toolDefinitions() asks for all of them);
 * each caller gets its own copy, free to change.
 */
export const toolJsonSchema = (schema: Schema.Schema<any, any>): Json => {
  let json = made.get(schema)
  if (!json) made.set(schema, (json = makeToolJsonSchema(schema)))
  return structuredClone(json)
}

const makeToolJsonSchema = (schema: Schema.Schema<any, any>): Json => {
  // An empty struct would come out as "any object or array".
  if (SchemaAST.isTypeLiteral(schema.ast) && schema.ast.propertySignatures.length === 0) {
    return { type: "object", properties: {}, additionalProperties: false }
  }
  const raw = JSONSchema.make(schema) as unknown as Json
  const tidied = tidy(raw, (raw["$defs"] as Json | undefined) ?? {}) as Json
  return { type: "object", ...tidied }
}
