// Public entry points of this service; its issue fills them in.
export {};
