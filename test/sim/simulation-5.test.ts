// Deterministic simulation of 5-node clusters under random fault schedules: safety after every
// step, liveness once the faults end, linearizability of every client operation.
import { simulationTest } from './simulation-suite.js';

simulationTest(5);
