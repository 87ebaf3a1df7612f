"The serving: response and student stores, the web API and its keys and server, the model registry and monitoring."
