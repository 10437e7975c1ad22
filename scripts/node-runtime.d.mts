/** Types of node-runtime.mjs (plain JavaScript: it must run on an older Node before dependencies exist). */
export declare const NODE_MAJOR: number;
export declare function nodeBinDir(env?: NodeJS.ProcessEnv): string;
