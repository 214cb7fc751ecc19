export { type ArchiverDeps, type ArchiverHandle, FencedError, startArchiver } from "./archiver.js";
export { AvroMappingError, arrowFieldsOf, decimalText, type MappedField } from "./avro-arrow.js";
export { type ArchiverConfig, configSchema } from "./config.js";
export {
  type ArchivedRow,
  type Claim,
  type ClaimOutcome,
  claimRoll,
  latestClaim,
  planRoll,
  pruneClaims,
  type Roll,
  writeRoll,
} from "./files.js";
