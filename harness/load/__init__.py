"""The load: a run's configuration, the requests it sends, the schedule that offers them,
the runner (in one process or several) that sends them, and the exchange and recorder that
turn each response into a record; with the schedule's books and the client's self-watch."""
