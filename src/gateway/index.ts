/** `aiecs/gateway`: the HTTP API and realtime gateway, for embedding in a server of your own. */
export { Gateway, startGateway, GATEWAY_VERSION } from './server.js';
export type { GatewayOptions } from './server.js';
export { mintToken, createVerifier, parseTtl } from './auth.js';
export type { Principal, Verifier, AuthOptions } from './auth.js';
export type { ProgressEvent, StreamEvent, BridgeEvent } from './event-bridge.js';
export { HTTP_STATUS } from './http-errors.js';
// Checking schedules as /api/schedules and schedule files do, for Schedules.put and sync.
export { checkSchedule, checkScheduleList } from './schedule-schema.js';
