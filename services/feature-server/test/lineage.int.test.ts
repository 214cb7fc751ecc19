import { services, uniqueName } from "../../../test/support/index.js";
import { lineageSuite } from "./lineage-suite.js";

lineageSuite(services().SCHEMA_REGISTRY_URL, `${uniqueName("lineage")}-value`);
