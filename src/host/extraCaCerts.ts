/**
 * The operator's extra certificate authorities (NODE_EXTRA_CA_CERTS), for the
 * connections pyro makes itself (registry pulls) and for the programs it runs.
 *
 * Node 20 reads and parses that file as it starts, before any of pyro's code: ~40 ms
 * on every command here (Debian's bundle of ~140 CAs), though only a pull ever opens
 * a TLS connection. So bin/pyro.js's first line starts Node without the variable and
 * hands its value on as PYRO_NODE_EXTRA_CA_CERTS. Then:
 * - a pull trusts Node's default roots plus the file's certificates, as Node itself
 *   would have (`registrySecureContext`, built once, when a pull first connects);
 * - Node processes of pyro's own (the spare filler, port forwarders) inherit the
 *   handed-on variable and do the same;
 * - any other program pyro runs (`pyro host` runs claude or codex) gets
 *   NODE_EXTRA_CA_CERTS back (`caEnvForPrograms`).
 * A process Node started with NODE_EXTRA_CA_CERTS itself (`node bin/pyro.js`, an SDK
 * program) has trusted them since its start: nothing to add.
 */
import * as Fs from "node:fs"
import * as Tls from "node:tls"

export const HANDED_ON = "PYRO_NODE_EXTRA_CA_CERTS"

/** The handed-on file, when this process was started without NODE_EXTRA_CA_CERTS. */
const handedOnFile = (): string | undefined => {
  const file = process.env[HANDED_ON]
  return file && !process.env.NODE_EXTRA_CA_CERTS ? file : undefined
}

/** What a program pyro runs (not one of its own Node processes) gets back of the operator's variable. */
export const caEnvForPrograms = (): Record<string, string> => {
  const file = handedOnFile()
  return file ? { NODE_EXTRA_CA_CERTS: file } : {}
}

let cached: { readonly context: Tls.SecureContext | undefined } | undefined

/**
 * The TLS context a registry connection uses, if not Node's default: the default
 * roots (the bundled ones, or OpenSSL's store under --use-openssl-ca) plus the
 * handed-on file's certificates. Built once per process: building a context from
 * ~140 roots and a bundle costs tens of milliseconds, too much for every connection.
 * A file that cannot be read or holds no certificate is ignored with a warning, as
 * Node ignores one.
 */
export const registrySecureContext = (): Tls.SecureContext | undefined => {
  if (cached) return cached.context
  const file = handedOnFile()
  let context: Tls.SecureContext | undefined
  if (file) {
    try {
      const pem = Fs.readFileSync(file, "utf8")
      if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it")
      context = Tls.createSecureContext()
      // The native context's own call, which is how Node adds NODE_EXTRA_CA_CERTS to its roots;
      // `ca` would replace the default roots instead.
      const native = (context as unknown as { context?: { addCACert?: (pem: string) => void } }).context
      if (typeof native?.addCACert === "function") native.addCACert(pem)
      else context = Tls.createSecureContext({ ca: [...Tls.rootCertificates, pem] })
    } catch (e) {
      context = undefined
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(e as Error).message}`)
    }
  }
  cached = { context }
  return context
}
