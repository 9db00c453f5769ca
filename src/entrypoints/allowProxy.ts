/**
 * `node dist/allowProxy.cjs DIR`: one guest connection on fd 0 (libslirp's
 * guestfwd; src/vm/network/allowProxy.ts). Nothing may reach stdout or stderr
 * but the protocol: both are the guest's connection.
 */
import * as Net from "node:net"
import { serveConnection } from "../vm/network/allowProxy.js"

const quiet = () => process.exit(1)
process.on("uncaughtException", quiet)
process.on("unhandledRejection", quiet)

const dir = process.argv[2]
if (!dir) process.exit(2)
void serveConnection(new Net.Socket({ fd: 0, readable: true, writable: true }), dir)
