export { type ArchiverDeps, type ArchiverHandle, startArchiver } from "./archiver.js";
export { AvroMappingError, arrowFieldsOf, decimalText, type MappedField } from "./avro-arrow.js";
export { type ArchiverConfig, configSchema } from "./config.js";
export { type ArchivedRow, finishRoll, type Roll, recoverPartition, writeRoll } from "./files.js";
