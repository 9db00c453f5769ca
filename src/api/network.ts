/** How the CLI spells the network fields of `pyro run` and `pyro workspace create`. */
export const networkCli = {
  optionNames: { allow_hosts: "allow-host" },
  optionHelp: {
    network: "Same as --network-policy egress",
    network_policy: "off (default), egress, or egress+published-ports",
    allow_hosts: "With egress: a name the guest may reach (github.com, *.npmjs.org), through the host's proxy; " +
      "repeat for more. Nothing else is reachable"
  }
} as const
