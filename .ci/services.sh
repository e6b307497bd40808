# Sourced by .ci/run (bash): starts a throwaway PostgreSQL cluster and an
# S3-compatible server (s3rver) on free ports, exports the URLs the storage
# tests read (ZOO_TEST_DATABASE_URL, ZOO_TEST_BLOBS_URL, AWS_*), and stops
# both when the shell exits. Needs Debian's postgresql.
zoo_services_dir="$(mktemp -d)"
chmod 755 "$zoo_services_dir"
zoo_pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
zoo_free_port() {
  deno eval 'const l = Deno.listen({ hostname: "127.0.0.1", port: 0 }); console.log(l.addr.port); l.close();'
}
zoo_as_pg() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}
zoo_pg_port="$(zoo_free_port)"
mkdir -p "$zoo_services_dir/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$zoo_services_dir/pg"
zoo_as_pg "'$zoo_pg_bin/initdb' -D '$zoo_services_dir/pg/data' -U postgres -A trust --no-sync -E UTF8 >/dev/null"
zoo_as_pg "'$zoo_pg_bin/pg_ctl' -D '$zoo_services_dir/pg/data' -l '$zoo_services_dir/pg/log' -w \
  -o \"-p $zoo_pg_port -k '$zoo_services_dir/pg' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start >/dev/null"
export ZOO_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:${zoo_pg_port}/postgres"

deno run -A .ci/s3_server.ts --bucket zoo-test >"$zoo_services_dir/s3.url" 2>"$zoo_services_dir/s3.log" &
zoo_s3_pid=$!
for _ in $(seq 1 100); do [ -s "$zoo_services_dir/s3.url" ] && break; sleep 0.2; done
[ -s "$zoo_services_dir/s3.url" ] || { cat "$zoo_services_dir/s3.log"; exit 1; }
export ZOO_TEST_BLOBS_URL="s3://zoo-test/ci?endpoint=$(cat "$zoo_services_dir/s3.url")&region=us-east-1"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER

zoo_stop_services() {
  kill "$zoo_s3_pid" 2>/dev/null || true
  wait "$zoo_s3_pid" 2>/dev/null || true
  zoo_as_pg "'$zoo_pg_bin/pg_ctl' -D '$zoo_services_dir/pg/data' -m immediate stop >/dev/null" || true
  rm -rf "$zoo_services_dir"
}
trap zoo_stop_services EXIT
echo "PostgreSQL on 127.0.0.1:${zoo_pg_port}, S3 (s3rver) on $(cat "$zoo_services_dir/s3.url")"
