// The same suite again, with steps started through the external orchesjob adapter, pointed at the
// two-line `exec orchesjob-flow job "$@"` wrapper.
import { registerFlowSuite } from "./flow_suite.ts";

registerFlowSuite("external");
