/**
 * One process at a time on a PGlite data folder. PGlite keeps its database in the process's memory and
 * writes it back to the folder; a second process on the same folder works on its own copy, and
 * whichever writes last silently undoes the other's writes. So the folder holds a lock file naming the
 * process that has it open: created atomically, removed on close and on exit, and taken over only when
 * the process it names is gone (killed, crashed, or a previous life of this very pid in a container).
 */
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DataFolderInUseError } from './errors.js';

export const LOCK_FILE = 'promoguard.lock';

/** Folders this process has open: a second open in the same process is refused too. */
const held = new Set<string>();

export interface DataFolderLock {
  release(): void;
}

/** Locks the folder at `location` (absolute) or throws DataFolderInUseError naming it as `shown`. */
export function lockDataFolder(location: string, shown: string): DataFolderLock {
  if (held.has(location)) throw new DataFolderInUseError(shown, process.pid);
  const file = path.join(location, LOCK_FILE);
  const staged = `${file}.${process.pid}.${Date.now().toString(36)}`;
  writeFileSync(staged, `${process.pid}\n`);
  try {
    // Two takeovers of one stale lock in a row would both win if it were removed and recreated blindly;
    // a bounded number of rounds re-reads the holder each time.
    for (let round = 0; round < 5; round++) {
      try {
        // link() creates the lock with its content in one step: nobody ever reads a half-written pid.
        linkSync(staged, file);
        return hold(location, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = readHolder(file);
      if (holder !== null && holder !== process.pid && isAlive(holder)) {
        throw new DataFolderInUseError(shown, holder);
      }
      removeQuietly(file);
    }
    throw new Error(`could not lock the data folder ${shown}: its lock file keeps changing`);
  } finally {
    removeQuietly(staged);
  }
}

function hold(location: string, file: string): DataFolderLock {
  held.add(location);
  const onExit = () => releaseFile(file);
  process.on('exit', onExit);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      process.removeListener('exit', onExit);
      held.delete(location);
      releaseFile(file);
    },
  };
}

/** Removes the lock only while it is still this process's (never a successor's). */
function releaseFile(file: string): void {
  if (readHolder(file) === process.pid) removeQuietly(file);
}

function readHolder(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone.
  }
}
