"""VLN-CE episode generation for the embedded scenes: routes by the shortest-path expert,
instructions in natural language (R2R and RxR styles), datasets written with the shared savers.

route: what a route does (rooms, doorways, turns, landmarks); instructions: the words;
sampler: one episode in one scene; dataset: whole splits; gen_episodes: the CLI.
"""
