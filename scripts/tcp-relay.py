#!/usr/bin/env python3
"""A TCP relay: accepts on LISTEN (HOST:PORT) and connects each client to TARGET (HOST:PORT).

scripts/netns-cluster.sh runs channel nodes in their own network namespaces; the machine's
PostgreSQL and Redis listen on 127.0.0.1 of the root namespace only, which a namespace cannot
reach. The relay listens on the bridge's address, which the namespaces can.
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(listen, target):
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def serve(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(thost, int(tport))
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(serve, lhost, int(lport), reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: tcp-relay.py LISTEN_HOST:PORT TARGET_HOST:PORT")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
