/** The flow `orchesjob-flow example` prints; examples/daily-import.yaml holds the same text (a test checks). */
export const EXAMPLE_FLOW = `# A daily import: download, validate, import; notify when any of them did not succeed.
# Commands given as a string run under /bin/sh -c; a list runs the program directly.
flow_id: daily-import
steps:
  - id: download
    command: "echo downloading; sleep 1; echo downloaded"

  - id: validate
    when: download
    retries: 1
    retry_delay_sec: 1
    command: ["/bin/sh", "-c", "echo validating; sleep 1"]

  - id: import
    when: validate
    timeout_sec: 600
    command: "echo importing; sleep 1; echo imported"

  - id: notify_failed
    when: !download || !validate || !import
    command: "echo 'daily import did not complete' >&2"
`;
