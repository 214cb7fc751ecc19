import { createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in front of a real server that a test can stall (connections stay open, bytes are held
 * back: the server looks hung, as when it is blocked or the network stalls), cut (every connection
 * dropped, new ones refused) or restore (held bytes are delivered in order, as TCP would).
 */
export class StoreProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private held: Array<[Socket, Buffer]> = [];
  private current: "pass" | "silent" | "down" = "pass";

  get mode(): "pass" | "silent" | "down" {
    return this.current;
  }

  set mode(mode: "pass" | "silent" | "down") {
    this.current = mode;
    if (mode !== "pass") return;
    for (const [to, chunk] of this.held) if (!to.destroyed) to.write(chunk);
    this.held = [];
  }

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  async start(): Promise<number> {
    this.server = createServer((client) => {
      if (this.current === "down") return void client.destroy();
      const upstream = new (client.constructor as typeof Socket)();
      upstream.connect(this.port, this.host);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const forward = (from: Socket, to: Socket) =>
        from.on("data", (chunk) => {
          if (this.current === "pass") to.write(chunk);
          else this.held.push([to, chunk]);
        });
      forward(client, upstream);
      forward(upstream, client);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on("close", close).on("error", close);
      upstream.on("close", close).on("error", close);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return (this.server!.address() as { port: number }).port;
  }

  /** Drops every open connection (new ones are refused while mode is "down"). */
  cut(): void {
    this.current = "down";
    this.held = [];
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
