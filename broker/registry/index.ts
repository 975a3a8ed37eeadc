export {
  type AddDeviceOptions,
  type AddDeviceResult,
  createDeviceRegistry,
  DEFAULT_REGISTRY_OPTIONS,
  type DeviceRecord,
  type DeviceRegistry,
  type DeviceRegistryOptions,
  type VerifyResult,
} from "./device-registry.ts";
export { DEFAULT_SCRYPT_PARAMS, type ScryptParams } from "./secret-hash.ts";
export { copyRegistryFile, refuseNewerRegistryFile } from "./schema.ts";
