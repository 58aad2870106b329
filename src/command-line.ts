// The command line of every entry point (the node, npm start, npm run restore): options parsed by
// node:util's parseArgs, `--help` printing the usage, and an unknown option or a missing value
// answered with the usage instead of parseArgs' stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP = { help: { type: 'boolean', default: false } } as const;

/**
 * The values of `options` on this process's command line. `--help` prints `usage` and exits 0; a
 * command line parseArgs refuses goes to `refuse`, with the usage.
 */
export function parseCommandLine<O extends Options>(
  options: O,
  usage: string,
  refuse: (message: string) => never,
): ReturnType<typeof parseArgs<{ options: O & typeof HELP }>>['values'] {
  let parsed;
  try {
    parsed = parseArgs({ options: { ...options, ...HELP } });
  } catch (error) {
    refuse(`${(error as Error).message}\n${usage}`);
  }
  // The values' type depends on O; `help` is in it whatever O is.
  if ((parsed.values as { readonly help?: boolean }).help === true) {
    console.log(usage);
    process.exit(0);
  }
  return parsed.values;
}
