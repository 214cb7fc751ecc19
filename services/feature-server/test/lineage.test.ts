import { lineageSuite } from "./lineage-suite.js";

lineageSuite();
