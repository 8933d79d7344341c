/**
 * A process and its descendants, read from /proc (Linux): who they are, their resident memory,
 * their CPU time and how often their threads were switched out (each a wake-up, give or take).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { rssMb } from './lifecycle.js';
import { cpuSeconds } from './cli-child.js';

/** The fields of /proc/<pid>/stat after the command name (which is in parentheses, may hold spaces). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** `pid` and every process below it, parents first; processes that exit meanwhile are left out. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const parent = Number(statFields(Number(name))[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(name)]);
    } catch {
      // Gone between the listing and the read.
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

/** Context switches (voluntary and not) of all of a process's threads so far. */
export function contextSwitches(pid: number): number {
  let total = 0;
  for (const thread of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${thread}/status`, 'utf8');
      for (const match of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm))
        total += Number(match[1]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return total;
}

export interface ProcessFigures {
  pid: number;
  /** The last arguments of its command line, enough to tell a pool child from its parent. */
  command: string;
  rssMb: number;
}

/** Each process of the tree with its resident memory, now. */
export function treeMemory(pids: readonly number[]): ProcessFigures[] {
  return pids.map((pid) => ({
    pid,
    command: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(-3).join(' '),
    rssMb: rssMb(pid),
  }));
}

/** CPU seconds and context switches of the tree so far: a window is the difference of two. */
export function treeCounters(pids: readonly number[]): { cpuS: number; switches: number } {
  let cpuS = 0;
  let switches = 0;
  for (const pid of pids) {
    cpuS += cpuSeconds(pid);
    switches += contextSwitches(pid);
  }
  return { cpuS, switches };
}
