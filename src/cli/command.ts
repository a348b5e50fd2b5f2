/**
 * How commands are declared: a leaf gets `--output`, an example in `--help` and an action that receives a
 * `CommandContext`; a group without a subcommand is a usage error.
 * @module
 */
import { Option, type Command } from 'commander';
import { CliUsageError, createCommandContext, OUTPUT_FORMATS, type CliIo, type CommandContext, type GlobalFlags, type OutputFormat, type WorkloadApiTokenSource } from './context.js';

/** Declares a leaf command: description, `--output`, an example in `--help`, and the action. */
export type LeafBuilder = (
  parent: Command,
  name: string,
  description: string,
  examples: string[],
) => { command: Command; action(handler: (ctx: CommandContext, opts: Record<string, unknown>) => Promise<void>): Command };

export function createLeafBuilder(io: CliIo, workloadApiToken: WorkloadApiTokenSource): LeafBuilder {
  return (parent, name, description, examples) => {
    const command = parent
      .command(name)
      .description(description)
      .addOption(new Option('--output <format>', 'output format').choices(OUTPUT_FORMATS).default('pretty'))
      .addHelpText('after', `\nExample${examples.length > 1 ? 's' : ''}:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
    return {
      command,
      action(handler) {
        return command.action(async (opts: Record<string, unknown>, cmd: Command) => {
          const globals = cmd.optsWithGlobals() as GlobalFlags;
          await handler(createCommandContext(io, globals, opts['output'] as OutputFormat, workloadApiToken), opts);
        });
      },
    };
  };
}

/** A group command (`wisp entry`): `--help` lists its subcommands; without one it is a usage error. */
export function addGroup(program: Command, name: string, description: string, example: string): Command {
  const group = program.command(name).description(description).addHelpText('after', `\nExample:\n  $ ${example}\n`);
  group.allowExcessArguments().action((_opts: unknown, cmd: Command) => {
    const sub = cmd.args[0];
    const names = group.commands.map((c) => c.name()).join('|');
    throw new CliUsageError(`${sub === undefined ? 'missing' : `unknown command '${sub}':`} subcommand: wisp ${name} ${names} (see wisp ${name} --help)`);
  });
  return group;
}

