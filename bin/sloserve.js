#!/usr/bin/env node
// sloserve runs its TypeScript sources directly (tsx), so a fresh clone needs no build step.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
