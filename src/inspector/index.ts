/**
 * The web inspector behind `statelog ui`: a local page over opened stores
 * (docs/inspector.md). Internal to the CLI: not a package entry point.
 */
export {
  INSPECTOR_DEFAULTS,
  type InspectorHistoryEntry,
  type InspectorHistoryReader,
  type InspectorOptions,
  type InspectorSettings,
  type InspectorTarget,
} from "./options.js";
export { Inspector } from "./server.js";
