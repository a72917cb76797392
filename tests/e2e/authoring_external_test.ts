// The authoring suite with steps started through the external adapter (the `orchesjob-flow job` wrapper).
import { registerAuthoringSuite } from "./authoring_suite.ts";

registerAuthoringSuite("external");
