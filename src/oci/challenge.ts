/** Parsing `WWW-Authenticate` challenges (RFC 7235) as registries send them. */

export interface Challenge {
  /** Lowercased: "bearer", "basic". */
  readonly scheme: string
  /** Parameter names lowercased: realm, service, scope. */
  readonly params: Readonly<Record<string, string>>
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/

/** The first challenge in the header, or `undefined` if there is none or it is malformed. */
export const parseChallenge = (header: string | null | undefined): Challenge | undefined => {
  if (!header) return undefined
  let rest = header.trimStart()
  const scheme = TOKEN.exec(rest)
  if (!scheme) return undefined
  rest = rest.slice(scheme[0].length)
  const params: Record<string, string> = {}
  for (;;) {
    rest = rest.replace(/^[\s,]+/, "")
    const key = TOKEN.exec(rest)
    if (!key) break
    const afterKey = rest.slice(key[0].length).trimStart()
    // A token not followed by "=" starts the next challenge.
    if (!afterKey.startsWith("=")) break
    rest = afterKey.slice(1).trimStart()
    let value: string
    if (rest.startsWith("\"")) {
      let i = 1
      value = ""
      while (i < rest.length && rest[i] !== "\"") {
        if (rest[i] === "\\" && i + 1 < rest.length) i++
        value += rest[i]
        i++
      }
      if (i >= rest.length) return undefined
      rest = rest.slice(i + 1)
    } else {
      const token = /^[^\s,]*/.exec(rest)
      value = token?.[0] ?? ""
      rest = rest.slice(value.length)
    }
    params[key[0].toLowerCase()] = value
  }
  return { scheme: scheme[0].toLowerCase(), params }
}
