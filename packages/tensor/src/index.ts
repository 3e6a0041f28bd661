// The public API of @webmoe/tensor (api/tensor.api.md is its report). Node-only
// sources and writers are in '@webmoe/tensor/node'.
export { VERSION } from './version.js';
export {
  WebMoEError,
  ShapeError,
  DTypeError,
  ValueError,
  SafetensorsError,
  ByteSourceError,
  type SafetensorsErrorCode,
  type ByteSourceErrorCode,
} from './errors.js';
export { DTYPES, ALL_DTYPES, isDType, allocHost, viewHost, type DType, type DTypeInfo, type HostArray } from './dtype.js';
export {
  f32ToBf16,
  bf16ToF32,
  f32ToF16,
  f16ToF32,
  f32ToE4m3,
  e4m3ToF32,
  f32ToE5m2,
  e5m2ToF32,
  toFloat32,
  fromFloat32,
  roundTo,
} from './convert.js';
export { HostTensor, numel, checkShape, shapeEquals } from './host-tensor.js';
export { DeviceRef } from './device-ref.js';
export { bytesSource, blobSource, urlSource, type ByteSource, type UrlSourceOptions } from './byte-source.js';
export { SafetensorsFile, serializeSafetensors, type TensorInfo, type RawTensor, type SerializableTensor } from './safetensors.js';
export { Checkpoint, memorySource, urlDirSource, readConfig, type CheckpointSource } from './checkpoint.js';
export {
  quantizeFp8Block,
  dequantizeFp8Block,
  quantizeActivationsFp8,
  fakeQuantizeActivationsFp8,
  type Fp8Format,
  type Fp8BlockOptions,
  type ActQuantOptions,
} from './quant-fp8.js';
