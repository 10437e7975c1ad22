/**
 * Docker images riskmon runs on: the base images compose.yaml and the test harness use (official by default, the
 * RISKMON_*_IMAGE variables select others, e.g. the stand-ins of `npm run images -- local`), and the one probe of
 * whether a Docker engine answers. Shared by scripts/images.ts, test/harness/containers.ts and the compose test.
 */
import { spawnSync } from 'node:child_process';

export type BaseImage = 'node' | 'postgres' | 'kafka' | 'redis' | 'prometheus';
export const BASE_IMAGES: readonly BaseImage[] = ['node', 'postgres', 'kafka', 'redis', 'prometheus'];

/** The variable that selects each base image and its default, the official image (docs/deployment.md "Containers"). */
export const IMAGE_VARS: Readonly<Record<BaseImage, { env: string; official: string }>> = Object.freeze({
  node: { env: 'RISKMON_NODE_IMAGE', official: 'node:24-bookworm-slim' },
  postgres: { env: 'RISKMON_POSTGRES_IMAGE', official: 'postgres:15' },
  kafka: { env: 'RISKMON_KAFKA_IMAGE', official: 'apache/kafka:3.9.1' },
  redis: { env: 'RISKMON_REDIS_IMAGE', official: 'redis:7' },
  /** compose.yaml's monitoring profile only. */
  prometheus: { env: 'RISKMON_PROMETHEUS_IMAGE', official: 'prom/prometheus:v2.53.4' },
});

/** The image a base name resolves to in this environment. */
export function baseImage(name: BaseImage, env: NodeJS.ProcessEnv = process.env): string {
  const v = IMAGE_VARS[name];
  return env[v.env] || v.official;
}

export type DockerProbe = { ok: true; version: string } | { ok: false; reason: string };

/** Whether a Docker engine answers the `docker` CLI (DOCKER_HOST or the default socket), and if not, why. */
export function probeDocker(env: NodeJS.ProcessEnv = process.env): DockerProbe {
  const r = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', env, timeout: 15_000 });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'the docker CLI is not installed' : `docker version failed: ${r.error.message}` };
  }
  if (r.status !== 0) return { ok: false, reason: `no Docker engine answers: ${(r.stderr || r.stdout).trim().split('\n').pop()}` };
  return { ok: true, version: r.stdout.trim() };
}

/**
 * The environment for `docker build`: BuildKit when the buildx plugin is installed, else the classic builder
 * (Debian's docker.io ships no buildx and a recent CLI refuses BuildKit without it). Both build every Dockerfile here.
 */
export function dockerBuildEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.DOCKER_BUILDKIT !== undefined) return env;
  const buildx = spawnSync('docker', ['buildx', 'version'], { encoding: 'utf8', env, timeout: 15_000 });
  return buildx.status === 0 ? env : { ...env, DOCKER_BUILDKIT: '0' };
}

/** Whether the engine holds an image of this name. */
export function imageExists(ref: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return spawnSync('docker', ['image', 'inspect', ref], { stdio: 'ignore', env, timeout: 30_000 }).status === 0;
}

/**
 * The Compose command that works here: the `docker compose` v2 plugin when installed, else the standalone
 * `docker-compose` (Debian bookworm ships 1.29, which reads compose.yaml as well). Null when neither runs.
 */
export function composeCommand(env: NodeJS.ProcessEnv = process.env): string[] | null {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore', env, timeout: 15_000 }).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore', env, timeout: 15_000 }).status === 0) return ['docker-compose'];
  return null;
}
